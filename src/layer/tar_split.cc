// Reassemble: a layer tar rebuilt from its tar-split (written by Apply) and its diff dir.
#include <fcntl.h>
#include <linux/openat2.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>

#include "layer/internal.h"
#include "layer/layer.h"
#include "util/digest.h"

namespace shale::layer {
namespace {

Result<std::string> ReadSplit(int fd) {
  std::unique_ptr<ZSTD_DCtx, FnDeleter<ZSTD_freeDCtx>> dctx(ZSTD_createDCtx());
  std::string in(ZSTD_DStreamInSize(), '\0');
  std::string chunk(ZSTD_DStreamOutSize(), '\0');
  std::string out;
  size_t last = 1;
  for (;;) {
    ssize_t n = ::read(fd, in.data(), in.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read tar-split");
    }
    if (n == 0) break;
    ZSTD_inBuffer ib{in.data(), static_cast<size_t>(n), 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob{chunk.data(), chunk.size(), 0};
      last = ZSTD_decompressStream(dctx.get(), &ob, &ib);
      if (ZSTD_isError(last))
        return Error(Errc::kCorrupt, std::string("tar-split: zstd: ") + ZSTD_getErrorName(last));
      out.append(chunk.data(), ob.pos);
    }
  }
  if (last != 0) return Error(Errc::kCorrupt, "tar-split: truncated");
  return out;
}

bool GetVarint(std::string_view* s, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (s->empty()) return false;
    auto b = static_cast<unsigned char>(s->front());
    s->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace

Result<WriteResult> Reassemble(const Dir& diff, int split_fd, int out_fd) {
  std::string split = TRY(ReadSplit(split_fd));
  std::string_view s(split);
  if (s.substr(0, internal::kSplitMagic.size()) != internal::kSplitMagic)
    return Error(Errc::kCorrupt, "tar-split: not a shale tar-split (bad magic)");
  s.remove_prefix(internal::kSplitMagic.size());
  Sha256 sha;
  int64_t total = 0;
  std::unique_ptr<char[]> buf;
  constexpr size_t kBuf = 1 << 20;
  auto bad = [](const std::string& why) { return Error(Errc::kCorrupt, "tar-split: " + why); };
  auto emit = [&](const char* p, size_t n) -> Result<void> {
    sha.Update(p, n);
    total += static_cast<int64_t>(n);
    return internal::WriteFull(out_fd, p, n, "rebuilt layer tar");
  };
  for (;;) {
    if (s.empty()) return bad("truncated (no end record)");
    char kind = s.front();
    s.remove_prefix(1);
    uint64_t n;
    if (!GetVarint(&s, &n)) return bad("truncated record");
    if (kind == 'R') {
      if (n > s.size()) return bad("truncated raw record");
      TRY(emit(s.data(), n));
      s.remove_prefix(n);
    } else if (kind == 'F') {
      uint64_t len;
      if (!GetVarint(&s, &len) || len > s.size()) return bad("truncated file record");
      std::string path(s.substr(0, len));
      s.remove_prefix(len);
      // Beneath diff/, no symlink on the way (the extractor made none there), and paths
      // longer than PATH_MAX too (a layer may hold them).
      long ofd = internal::OpenBeneath(
          diff.fd(), path, O_RDONLY | O_NOFOLLOW,
          RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
      if (ofd < 0) {
        int err = errno;
        if (err == ENOENT)
          return Error(Errc::kCorrupt, "file \"" + path + "\" of the layer is gone from " +
                                           diff.path() + " (its diff dir changed)");
        return Error::FromErrno(err, "open \"" + path + "\" in " + diff.path());
      }
      UniqueFd owner(static_cast<int>(ofd));
      auto* fd = &owner;
      posix_fadvise(fd->get(), 0, 0, POSIX_FADV_SEQUENTIAL);
      if (!buf) buf.reset(new char[kBuf]);
      uint64_t left = n;
      for (;;) {
        // Read one byte past the end to notice a file that grew.
        size_t want = static_cast<size_t>(std::min<uint64_t>(left + 1, kBuf));
        ssize_t r = ::read(fd->get(), buf.get(), want);
        if (r < 0) {
          if (errno == EINTR) continue;
          return Error::FromErrno(errno, "read \"" + path + "\" in " + diff.path());
        }
        if (r == 0) break;
        if (static_cast<uint64_t>(r) > left)
          return Error(Errc::kCorrupt, "file \"" + path + "\" of the layer is larger than " +
                                           std::to_string(n) + " bytes: it changed");
        TRY(emit(buf.get(), static_cast<size_t>(r)));
        left -= static_cast<uint64_t>(r);
      }
      if (left != 0)
        return Error(Errc::kCorrupt, "file \"" + path + "\" of the layer is smaller than " +
                                         std::to_string(n) + " bytes: it changed");
    } else if (kind == 'E') {
      std::string_view hex = s.substr(0, 64);
      if (hex.size() != 64 || !IsHex64(hex)) return bad("bad end record");
      WriteResult res;
      res.diff_id = sha.Finish();
      res.size = total;
      if (static_cast<int64_t>(n) != total || res.diff_id.hex() != hex)
        return Error(Errc::kCorrupt, "rebuilt tar has " + std::to_string(total) +
                                         " bytes and digest " + res.diff_id.str() +
                                         ", the layer had " + std::to_string(n) + " and sha256:" +
                                         std::string(hex) +
                                         " (its diff dir or its tar-split changed)");
      return res;
    } else {
      return bad("unknown record type");
    }
  }
}

}  // namespace shale::layer
