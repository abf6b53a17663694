// Tar-split round trips: Apply (or SplitTar) writes the split, Reassemble rebuilds the tar
// from it and the diff dir, byte for byte.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdlib>
#include <random>

#include "layer/layer.h"
#include "layer/test_util.h"
#include "util/digest.h"

namespace shale::layer {
namespace {

using namespace testing;

}  // namespace
void Sh(const std::string& cmd) { ASSERT_EQ(system(("set -e; " + cmd).c_str()), 0) << cmd; }

// Applies `tar` (read in `chunk`-sized pieces) with a tar-split, rebuilds it, compares.
inline void ExpectRoundTrip(const std::string& tar, const std::string& what, size_t* split_size = nullptr) {
  for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{511}, size_t{100003}}) {
    Sandbox sb;
    UniqueFd split(memfd_create("split", MFD_CLOEXEC));
    size_t pos = 0;
    ReadFn read = [&](char* buf, size_t n) -> Result<size_t> {
      size_t k = std::min({n, chunk, tar.size() - pos});
      memcpy(buf, tar.data() + pos, k);
      pos += k;
      return k;
    };
    ApplyOptions opts;
    opts.sync = false;
    opts.tar_split_fd = split.get();
    auto r = Apply(sb.root, read, opts);
    ASSERT_TRUE(r) << what << ": " << r.error().message();
    ASSERT_EQ(r->diff_id, Digest::Of(tar)) << what;
    if (split_size) *split_size = static_cast<size_t>(lseek(split.get(), 0, SEEK_END));
    lseek(split.get(), 0, SEEK_SET);
    UniqueFd out(memfd_create("out", MFD_CLOEXEC));
    auto w = Reassemble(sb.root, split.get(), out.get());
    ASSERT_TRUE(w) << what << " chunk " << chunk << ": " << w.error().message();
    std::string got = ReadFd(out.get());
    ASSERT_EQ(got.size(), tar.size()) << what << " chunk " << chunk;
    ASSERT_TRUE(got == tar) << what << " chunk " << chunk << ": bytes differ";
    EXPECT_EQ(w->diff_id, Digest::Of(tar));
    EXPECT_EQ(w->size, static_cast<int64_t>(tar.size()));
  }
}

namespace {
// A source tree with most kinds of entries.
std::string MakeTree(const std::string& base) {
  std::string src = base + "/src";
  std::string long_dir(120, 'd');
  std::string long_file(150, 'f');
  Sh("mkdir -p " + src + "/etc " + src + "/" + long_dir + " " + src + "/opq " + src + "/dev");
  Sh("printf 'root:x:0:0\\n' > " + src + "/etc/passwd");
  Sh("head -c 300000 /dev/urandom > " + src + "/" + long_dir + "/" + long_file);
  Sh("head -c 1048576 /dev/zero | tr '\\0' 'a' > " + src + "/big");
  Sh("ln " + src + "/big " + src + "/big-link");
  Sh("ln -s etc/passwd " + src + "/sym");
  Sh(": > " + src + "/empty");
  Sh(": > " + src + "/.wh.gone && : > " + src + "/opq/.wh..wh..opq");
  Sh("mknod " + src + "/dev/null0 c 1 3 && mknod " + src + "/dev/blk b 7 0 && mkfifo " + src +
     "/dev/fifo");
  Sh("truncate -s 3M " + src + "/sparse && echo tail >> " + src + "/sparse");
  Sh("python3 -c 'import os,sys; os.setxattr(sys.argv[1], \"user.k\", b\"value\")' " + src +
     "/etc/passwd");
  Sh("touch -d @1234567890.5 " + src + "/etc/passwd");
  return src;
}

TEST(TarSplit, GnuTarFormatsRoundTrip) {
  ScopedTempDir tmp = std::move(ScopedTempDir::Make("/tmp", "split-test-").value());
  std::string src = MakeTree(tmp.path());
  for (const char* fmt : {"gnu", "pax", "ustar-ish"}) {
    std::string t = tmp.path() + "/t.tar";
    std::string f = std::string(fmt) == "ustar-ish" ? "--format=posix --pax-option=delete=atime"
                                                     : std::string("--format=") + fmt;
    Sh("tar " + f + " --xattrs -S --numeric-owner -C " + src + " -cf " + t + " .");
    ExpectRoundTrip(Slurp(t), std::string("tar ") + fmt);
  }
}

TEST(TarSplit, LibarchiveTarWithWhiteoutsAndHardlinks) {
  std::string tar = MakeTar({DirEntry("a"), File("a/f", std::string(70000, 'x')),
                             Hardlink("a/h", "a/f"), Symlink("a/s", "f"), File("a/.wh.old", ""),
                             DirEntry("o"), File("o/.wh..wh..opq", ""), File("e", "")});
  size_t split_size = 0;
  ExpectRoundTrip(tar, "libarchive pax", &split_size);
  // The payload is referenced, not kept.
  EXPECT_LT(split_size, 2000u);
}

TEST(TarSplit, DuplicatesAndFilesTheTarDeletesKeepTheirPayload) {
  std::string tar = MakeTar({File("d/f", std::string(5000, '1')), File("d/f", std::string(7000, '2')),
                             File("g", std::string(3000, '3')), File(".wh.g", ""),
                             File("t/x", std::string(2000, '4')), File("t/y", "yy"),
                             Symlink("t", "elsewhere"), File("h", std::string(100, '5')),
                             DirEntry("h"), File("h/inner", "in")});
  ExpectRoundTrip(tar, "replacements");
}

TEST(TarSplit, AppendedDuplicatesAndTrailingGarbage) {
  ScopedTempDir tmp = std::move(ScopedTempDir::Make("/tmp", "split-test-").value());
  std::string d = tmp.path();
  Sh("mkdir " + d + "/s && echo one > " + d + "/s/f && tar -C " + d + "/s -cf " + d +
     "/t.tar f && echo two-two > " + d + "/s/f && tar -C " + d + "/s -rf " + d + "/t.tar f");
  std::string tar = Slurp(d + "/t.tar");
  ExpectRoundTrip(tar, "tar -r");
  std::mt19937 rng(1);
  std::string junk(1000, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  ExpectRoundTrip(tar + std::string(4096, '\0') + junk, "trailing zero blocks and junk");
}

// Issue 7 item 11: a tar ending in one end block, or in none, round-trips too (the bytes of
// the last buffer were dropped when libarchive asked for input past the end).
TEST(TarSplit, OneEndBlockNoEndBlockAndTrailingBytes) {
  std::string tar = MakeTar({File("f", "hello\n"), File("g", std::string(5000, 'g'))});
  size_t body = 512 + 512 + 512 + 5120;  // two headers, their padded payloads
  ASSERT_GT(tar.size(), body);
  ExpectRoundTrip(tar.substr(0, body) + std::string(512, '\0'), "one end block");
  ExpectRoundTrip(tar.substr(0, body), "no end block");
  ExpectRoundTrip(tar.substr(0, body + 1024) + "junk after the end", "trailing junk");
  ExpectRoundTrip("", "zero bytes");
}

TEST(TarSplit, EmptyTar) { ExpectRoundTrip(MakeTar({}), "empty tar"); }

TEST(TarSplit, SplitTarOfAPackedDiffDir) {
  Sandbox sb;
  std::string tar = MakeTar({DirEntry("a"), File("a/f", std::string(70000, 'x')),
                             Hardlink("a/h", "a/f"), File("a/.wh.old", ""), File("b", "bb")});
  ASSERT_TRUE(ApplyString(sb.root, tar));
  UniqueFd in = MemFd(tar);
  UniqueFd split(memfd_create("split", MFD_CLOEXEC));
  auto r = SplitTar(in.get(), split.get());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
  lseek(split.get(), 0, SEEK_SET);
  UniqueFd out(memfd_create("out", MFD_CLOEXEC));
  auto w = Reassemble(sb.root, split.get(), out.get());
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_TRUE(ReadFd(out.get()) == tar);

  // A tar that replaces its own file cannot be split without extracting it.
  std::string dup = MakeTar({File("f", "1"), File("f", "2")});
  UniqueFd din = MemFd(dup);
  UniqueFd dsplit(memfd_create("split", MFD_CLOEXEC));
  auto d = SplitTar(din.get(), dsplit.get());
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::kUnsupported);
}

TEST(TarSplit, ChangedDiffDirIsCorrupt) {
  std::string tar = MakeTar({File("f", std::string(1000, 'x')), File("g", "gg")});
  for (const char* change : {"same size", "longer", "gone"}) {
    Sandbox sb;
    UniqueFd split(memfd_create("split", MFD_CLOEXEC));
    ApplyOptions opts;
    opts.sync = false;
    opts.tar_split_fd = split.get();
    UniqueFd in = MemFd(tar);
    ASSERT_TRUE(ApplyFd(sb.root, in.get(), opts));
    std::string f = sb.root_path + "/f";
    if (std::string(change) == "same size") {
      ASSERT_TRUE(WriteFileAtomic(f, std::string(1000, 'y'), 0644));
    }
    if (std::string(change) == "longer") {
      ASSERT_TRUE(WriteFileAtomic(f, std::string(1001, 'x'), 0644));
    }
    if (std::string(change) == "gone") unlink(f.c_str());
    lseek(split.get(), 0, SEEK_SET);
    UniqueFd out(memfd_create("out", MFD_CLOEXEC));
    auto w = Reassemble(sb.root, split.get(), out.get());
    ASSERT_FALSE(w) << change;
    EXPECT_EQ(w.error().code(), Errc::kCorrupt) << change << ": " << w.error().message();
  }
}

}  // namespace
}  // namespace shale::layer

namespace shale::layer {
namespace {

TEST(TarSplit, CompressedInputSplitsTheTarInside) {
  using namespace testing;
  std::string tar = MakeTar({File("a", std::string(200000, 'a')), File("b", "b"), Symlink("c", "a")});
  for (const std::string& blob : {Gzip(tar), Zstd(tar)}) {
    Sandbox sb;
    UniqueFd split(memfd_create("split", MFD_CLOEXEC));
    UniqueFd tee(memfd_create("tee", MFD_CLOEXEC));
    UniqueFd in = MemFd(blob);
    ApplyOptions opts;
    opts.sync = false;
    opts.tar_split_fd = split.get();
    opts.tee_fd = tee.get();
    opts.tee_compressed_only = true;
    auto r = ApplyFd(sb.root, in.get(), opts);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(ReadFd(tee.get()) == blob);  // compressed: teed as received
    lseek(split.get(), 0, SEEK_SET);
    UniqueFd out(memfd_create("out", MFD_CLOEXEC));
    auto w = Reassemble(sb.root, split.get(), out.get());
    ASSERT_TRUE(w) << w.error().message();
    EXPECT_TRUE(ReadFd(out.get()) == tar);
  }
  // A plain tar is not teed when tee_compressed_only.
  Sandbox sb;
  UniqueFd tee(memfd_create("tee", MFD_CLOEXEC));
  UniqueFd in = MemFd(tar);
  ApplyOptions opts;
  opts.sync = false;
  opts.tee_fd = tee.get();
  opts.tee_compressed_only = true;
  ASSERT_TRUE(ApplyFd(sb.root, in.get(), opts));
  EXPECT_EQ(ReadFd(tee.get()).size(), 0u);
}

}  // namespace
}  // namespace shale::layer
