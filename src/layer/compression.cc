// Compression detection, streaming decoders (ISA-L gzip, libzstd) and deterministic gzip.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <isa-l/igzip_lib.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "layer/internal.h"
#include "layer/layer.h"
#include "util/digest.h"

namespace shale::layer {

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

Compression DetectCompression(std::string_view head) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.size() >= 2 && b(0) == 0x1f && b(1) == 0x8b) return Compression::kGzip;
  if (head.size() >= 4 && b(0) == 0x28 && b(1) == 0xb5 && b(2) == 0x2f && b(3) == 0xfd)
    return Compression::kZstd;
  return Compression::kNone;
}

namespace internal {
namespace {

class GzipDecoder : public Decoder {
 public:
  GzipDecoder() { Reset(); }

  Result<void> Decode(std::string_view* in, char* out, size_t cap, size_t* produced) override {
    *produced = 0;
    // A finished member followed by more input: a concatenated member (gzip allows them).
    if (finished_ && !in->empty()) Reset();
    st_.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in->data()));
    st_.avail_in = static_cast<uint32_t>(in->size());
    st_.next_out = reinterpret_cast<uint8_t*>(out);
    st_.avail_out = static_cast<uint32_t>(cap);
    int ret = isal_inflate(&st_);
    if (ret < 0) {
      const char* why = ret == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch"
                        : ret == ISAL_INVALID_WRAPPER  ? "not a gzip header"
                                                       : "invalid deflate data";
      return Error(Errc::kCorrupt, std::string("gzip stream: ") + why + " (isal_inflate " +
                                       std::to_string(ret) + ")");
    }
    in->remove_prefix(in->size() - st_.avail_in);
    *produced = cap - st_.avail_out;
    if (st_.block_state == ISAL_BLOCK_FINISH) finished_ = true;
    return Ok();
  }

  Result<void> Finish() override {
    if (!finished_) return Error(Errc::kCorrupt, "gzip stream: truncated (no end of stream)");
    return Ok();
  }

 private:
  void Reset() {
    isal_inflate_init(&st_);
    st_.crc_flag = ISAL_GZIP;
    finished_ = false;
  }
  inflate_state st_;
  bool finished_ = false;
};

class ZstdDecoder : public Decoder {
 public:
  ZstdDecoder() : ctx_(ZSTD_createDStream()) { ZSTD_initDStream(ctx_.get()); }

  Result<void> Decode(std::string_view* in, char* out, size_t cap, size_t* produced) override {
    ZSTD_inBuffer ib{in->data(), in->size(), 0};
    ZSTD_outBuffer ob{out, cap, 0};
    size_t ret = ZSTD_decompressStream(ctx_.get(), &ob, &ib);
    if (ZSTD_isError(ret))
      return Error(Errc::kCorrupt, std::string("zstd stream: ") + ZSTD_getErrorName(ret));
    in->remove_prefix(ib.pos);
    *produced = ob.pos;
    if (ib.pos > 0 || ob.pos > 0) last_ = ret;
    return Ok();
  }

  Result<void> Finish() override {
    if (last_ != 0) return Error(Errc::kCorrupt, "zstd stream: truncated (frame not complete)");
    return Ok();
  }

 private:
  std::unique_ptr<ZSTD_DStream, FnDeleter<ZSTD_freeDStream>> ctx_;
  size_t last_ = 1;
};

}  // namespace

std::unique_ptr<Decoder> MakeDecoder(Compression c) {
  if (c == Compression::kZstd) return std::make_unique<ZstdDecoder>();
  return std::make_unique<GzipDecoder>();
}

Result<void> WriteFull(int fd, const char* data, size_t n, std::string_view what) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "write " + std::string(what));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Ok();
}

long OpenBeneath(int dirfd, const std::string& path, int flags, uint64_t resolve) {
  auto open2 = [](int d, const char* p, int f, uint64_t r) {
    open_how how{};
    how.flags = static_cast<uint64_t>(f | O_CLOEXEC);
    how.resolve = r;
    for (;;) {
      long fd = syscall(SYS_openat2, d, p, &how, sizeof(how));
      if (fd >= 0 || (errno != EINTR && errno != EAGAIN)) return fd;
    }
  };
  constexpr size_t kPiece = 2048;  // well under PATH_MAX, and over NAME_MAX
  if (path.size() < kPiece) return open2(dirfd, path.c_str(), flags, resolve);
  UniqueFd cur;
  int at = dirfd;
  std::string_view rest(path);
  while (rest.size() >= kPiece) {
    size_t cut = rest.rfind('/', kPiece);
    if (cut == std::string_view::npos || cut == 0) {
      errno = ENAMETOOLONG;
      return -1;
    }
    std::string piece(rest.substr(0, cut));
    long fd = open2(at, piece.c_str(), O_PATH | O_DIRECTORY, resolve);
    if (fd < 0) return -1;
    cur.reset(static_cast<int>(fd));
    at = cur.get();
    rest.remove_prefix(cut + 1);
  }
  return open2(at, std::string(rest).c_str(), flags, resolve);
}

std::string ProcPath(int dirfd, const char* name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

Result<std::vector<Xattr>> ListXattrs(int dirfd, const char* name, std::string_view shown) {
  std::string path = ProcPath(dirfd, name);
  std::vector<Xattr> out;
  std::string names;
  for (;;) {
    ssize_t n = llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return out;
      return Error::FromErrno(errno, "llistxattr " + std::string(shown));
    }
    if (n == 0) return out;
    names.resize(static_cast<size_t>(n));
    n = llistxattr(path.c_str(), names.data(), names.size());
    if (n < 0 && errno == ERANGE) continue;
    if (n < 0) return Error::FromErrno(errno, "llistxattr " + std::string(shown));
    names.resize(static_cast<size_t>(n));
    break;
  }
  for (size_t i = 0; i < names.size();) {
    std::string key(names.c_str() + i);
    i += key.size() + 1;
    if (key.empty()) continue;
    std::string value;
    for (;;) {
      ssize_t n = lgetxattr(path.c_str(), key.c_str(), nullptr, 0);
      if (n < 0) {
        if (errno == ENODATA) break;
        return Error::FromErrno(errno, "lgetxattr " + key + " " + std::string(shown));
      }
      value.resize(static_cast<size_t>(n));
      n = lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
      if (n < 0 && errno == ERANGE) continue;
      if (n < 0) return Error::FromErrno(errno, "lgetxattr " + key + " " + std::string(shown));
      value.resize(static_cast<size_t>(n));
      out.push_back({std::move(key), std::move(value)});
      break;
    }
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

}  // namespace internal

namespace {
constexpr size_t kBuf = 1 << 20;

Result<size_t> ReadSome(int fd, char* buf, size_t n, std::string_view what) {
  for (;;) {
    ssize_t r = ::read(fd, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    return Error::FromErrno(errno, "read " + std::string(what));
  }
}
}  // namespace

Result<void> Decompress(int in_fd, int out_fd) {
  std::vector<char> in(kBuf), out(kBuf);
  size_t have = 0;
  // Fill enough to see the magic number.
  while (have < 4) {
    size_t r = TRY(ReadSome(in_fd, in.data() + have, kBuf - have, "compressed layer"));
    if (r == 0) break;
    have += r;
  }
  Compression c = DetectCompression(std::string_view(in.data(), have));
  if (c == Compression::kNone) {
    for (;;) {
      TRY(internal::WriteFull(out_fd, in.data(), have, "uncompressed layer"));
      have = TRY(ReadSome(in_fd, in.data(), kBuf, "layer"));
      if (have == 0) return Ok();
    }
  }
  auto dec = internal::MakeDecoder(c);
  for (;;) {
    std::string_view sv(in.data(), have);
    bool full = false;
    while (!sv.empty() || full) {
      size_t produced = 0;
      TRY(dec->Decode(&sv, out.data(), kBuf, &produced));
      TRY(internal::WriteFull(out_fd, out.data(), produced, "uncompressed layer"));
      full = produced == kBuf;
    }
    have = TRY(ReadSome(in_fd, in.data(), kBuf, "compressed layer"));
    if (have == 0) break;
  }
  // Flush anything still held inside the decoder.
  for (;;) {
    std::string_view sv;
    size_t produced = 0;
    TRY(dec->Decode(&sv, out.data(), kBuf, &produced));
    if (produced == 0) break;
    TRY(internal::WriteFull(out_fd, out.data(), produced, "uncompressed layer"));
  }
  return dec->Finish().Wrap(std::string(CompressionName(c)) + " layer");
}

Result<Digest> GzipCompress(int in_fd, int out_fd, Digest* uncompressed_digest) {
  // ISA-L level 3 (ratio near gzip -6 at many times its speed). The header ISA-L writes is
  // fixed (no name, mtime 0), so equal input gives equal output.
  std::vector<char> in(kBuf), out(kBuf);
  std::vector<uint8_t> level_buf(ISAL_DEF_LVL3_DEFAULT);
  isal_zstream zs;
  isal_deflate_init(&zs);
  zs.gzip_flag = IGZIP_GZIP;
  zs.level = 3;
  zs.level_buf = level_buf.data();
  zs.level_buf_size = static_cast<uint32_t>(level_buf.size());
  Sha256 out_hash, in_hash;
  for (;;) {
    size_t n = TRY(ReadSome(in_fd, in.data(), kBuf, "layer tar"));
    if (uncompressed_digest) in_hash.Update(in.data(), n);
    zs.next_in = reinterpret_cast<uint8_t*>(in.data());
    zs.avail_in = static_cast<uint32_t>(n);
    zs.end_of_stream = n == 0;
    zs.flush = NO_FLUSH;
    do {
      zs.next_out = reinterpret_cast<uint8_t*>(out.data());
      zs.avail_out = static_cast<uint32_t>(kBuf);
      int ret = isal_deflate(&zs);
      if (ret != COMP_OK)
        return Error(Errc::kInternal, "isal_deflate failed (" + std::to_string(ret) + ")");
      size_t produced = kBuf - zs.avail_out;
      out_hash.Update(out.data(), produced);
      TRY(internal::WriteFull(out_fd, out.data(), produced, "gzip layer"));
    } while (zs.avail_in > 0 || zs.avail_out == 0 ||
             (n == 0 && zs.internal_state.state != ZSTATE_END));
    if (n == 0) break;
  }
  if (uncompressed_digest) *uncompressed_digest = in_hash.Finish();
  return out_hash.Finish();
}

Result<Digest> ZstdCompress(int in_fd, int out_fd, Digest* uncompressed_digest) {
  // Level 3 is zstd's default and podman's; two worker threads when the library has them
  // (the output does not depend on the thread count, so equal input gives equal output).
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!ctx) return Error(Errc::kInternal, "ZSTD_createCCtx failed");
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, 1);
  (void)ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_nbWorkers, 2);  // refused without threads
  std::vector<char> in(kBuf), out(ZSTD_CStreamOutSize());
  Sha256 out_hash, in_hash;
  for (;;) {
    size_t n = TRY(ReadSome(in_fd, in.data(), kBuf, "layer tar"));
    if (uncompressed_digest) in_hash.Update(in.data(), n);
    ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
    ZSTD_inBuffer ib{in.data(), n, 0};
    for (;;) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      size_t left = ZSTD_compressStream2(ctx.get(), &ob, &ib, mode);
      if (ZSTD_isError(left))
        return Error(Errc::kInternal, std::string("zstd compression: ") + ZSTD_getErrorName(left));
      out_hash.Update(out.data(), ob.pos);
      TRY(internal::WriteFull(out_fd, out.data(), ob.pos, "zstd layer"));
      if (mode == ZSTD_e_end ? left == 0 : ib.pos == ib.size) break;
    }
    if (n == 0) break;
  }
  if (uncompressed_digest) *uncompressed_digest = in_hash.Finish();
  return out_hash.Finish();
}

}  // namespace shale::layer
