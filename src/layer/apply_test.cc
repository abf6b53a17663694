#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cstdlib>

#include "layer/layer.h"
#include "layer/test_util.h"
#include "util/digest.h"

namespace shale::layer {
namespace {

using namespace testing;

TEST(DetectCompression, MagicNumbers) {
  EXPECT_EQ(DetectCompression(std::string("\x1f\x8b\x08", 3)), Compression::kGzip);
  EXPECT_EQ(DetectCompression(std::string("\x28\xb5\x2f\xfd", 4)), Compression::kZstd);
  EXPECT_EQ(DetectCompression("usta"), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);
  EXPECT_EQ(CompressionName(Compression::kZstd), "zstd");
}

TEST(Apply, SameDiffIdForPlainGzipZstdAndEqualsSha256OfTar) {
  Sandbox sb;
  // A tar from GNU tar (with its trailing zero blocks padded to 10 KiB).
  std::string src = sb.tmp.path() + "/src";
  ASSERT_EQ(system(("mkdir -p " + src + "/etc/sub && echo hello > " + src +
                    "/etc/passwd && head -c 300000 /dev/urandom > " + src +
                    "/etc/sub/blob && tar -C " + src + " -cf " + sb.tmp.path() +
                    "/layer.tar etc")
                       .c_str()),
            0);
  std::string tar = Slurp(sb.tmp.path() + "/layer.tar");
  Digest want = Digest::Of(tar);
  struct Case {
    std::string blob;
    Compression c;
    size_t chunk;
  };
  std::vector<Case> cases = {{tar, Compression::kNone, 1 << 20},
                             {tar, Compression::kNone, 7},
                             {Gzip(tar), Compression::kGzip, 1 << 20},
                             {Gzip(tar), Compression::kGzip, 13},
                             {Zstd(tar), Compression::kZstd, 1 << 20},
                             {Zstd(tar), Compression::kZstd, 5}};
  int i = 0;
  for (auto& c : cases) {
    Dir d = Dir::Create(sb.tmp.path() + "/out" + std::to_string(i++)).value();
    auto r = ApplyString(d, c.blob, Whiteouts::kOverlay, c.chunk);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->diff_id, want) << CompressionName(c.c);
    EXPECT_EQ(r->digest, Digest::Of(c.blob));
    EXPECT_EQ(r->compression, c.c);
    EXPECT_EQ(r->uncompressed_size, static_cast<int64_t>(tar.size()));
    EXPECT_EQ(r->compressed_size, static_cast<int64_t>(c.blob.size()));
    EXPECT_EQ(r->content_size, 300000 + 6);
    EXPECT_EQ(Slurp(d.path() + "/etc/passwd"), "hello\n");
    EXPECT_EQ(Slurp(d.path() + "/etc/sub/blob"), Slurp(src + "/etc/sub/blob"));
  }
}

TEST(Apply, ApplyFdTeesInputAndSyncs) {
  Sandbox sb;
  std::string tar = MakeTar({DirEntry("a"), File("a/b", "content")});
  std::string gz = Gzip(tar);
  UniqueFd in = MemFd(gz);
  UniqueFd tee(memfd_create("tee", MFD_CLOEXEC));
  ApplyOptions opts;
  opts.tee_fd = tee.get();
  int64_t last_progress = 0;
  opts.progress = [&](int64_t n) { last_progress = n; };
  auto r = ApplyFd(sb.root, in.get(), opts);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(ReadFd(tee.get()), gz);
  EXPECT_EQ(last_progress, static_cast<int64_t>(gz.size()));
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
  EXPECT_EQ(Slurp(sb.root_path + "/a/b"), "content");
}

TEST(Apply, CorruptOrTruncatedInputFails) {
  Sandbox sb;
  std::string tar = MakeTar({File("a", std::string(100000, 'q'))});
  std::string gz = Gzip(tar);
  auto r = ApplyString(sb.root, gz.substr(0, gz.size() / 2));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorrupt) << r.error().message();
  std::string bad = gz;
  bad[bad.size() - 6] ^= 0x55;  // crc32 trailer
  r = ApplyString(sb.root, bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorrupt) << r.error().message();
  r = ApplyString(sb.root, tar.substr(0, 700));
  ASSERT_FALSE(r);
  r = ApplyString(sb.root, Zstd(tar).substr(0, 20));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorrupt) << r.error().message();
}

TEST(Apply, KeepsOwnersModesTimesXattrsLinksDevices) {
  Sandbox sb;
  TarEntry dir = DirEntry("srv", 0750);
  dir.uid = 1234;
  dir.gid = 5678;
  dir.mtime = 1500000000;
  TarEntry f = File("srv/run.sh", "#!/bin/sh\n");
  f.perm = 04755;
  f.uid = 42;
  f.gid = 43;
  f.mtime = 1400000000;
  f.xattrs = {{"trusted.overlay.redirect", "/etc"}, {"user.comment", "hi"}, {"security.capability", std::string("\x00\x00\x00\x02\x00\x04\x00\x00", 8) + std::string(12, '\0')}};
  TarEntry chr;
  chr.name = "dev/null";
  chr.type = AE_IFCHR;
  chr.perm = 0666;
  chr.dev_major = 1;
  chr.dev_minor = 3;
  TarEntry fifo;
  fifo.name = "run/fifo";
  fifo.type = AE_IFIFO;
  fifo.perm = 0600;
  TarEntry lnk = Symlink("srv/link", "/etc/passwd");
  lnk.uid = 7;
  lnk.mtime = 1300000000;
  std::string tar = MakeTar({dir, f, lnk, Hardlink("srv/hard", "srv/run.sh"), chr, fifo});
  auto r = ApplyString(sb.root, tar);
  ASSERT_TRUE(r) << r.error().message();
  struct stat st;
  ASSERT_EQ(lstat((sb.root_path + "/srv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtime, 1500000000);  // set after its children were made
  ASSERT_EQ(lstat((sb.root_path + "/srv/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);  // setuid survives the chown
  EXPECT_EQ(st.st_uid, 42u);
  EXPECT_EQ(st.st_mtime, 1400000000);
  EXPECT_EQ(st.st_nlink, 2u);
  char v[32];
  ssize_t n = getxattr((sb.root_path + "/srv/run.sh").c_str(), "user.comment", v, sizeof(v));
  EXPECT_EQ(std::string(v, n > 0 ? n : 0), "hi");
  n = getxattr((sb.root_path + "/srv/run.sh").c_str(), "security.capability", v, sizeof(v));
  EXPECT_EQ(n, 20);
  EXPECT_LT(getxattr((sb.root_path + "/srv/run.sh").c_str(), "trusted.overlay.redirect", v,
                     sizeof(v)), 0);  // never taken from an archive
  struct stat hs;
  ASSERT_EQ(lstat((sb.root_path + "/srv/hard").c_str(), &hs), 0);
  EXPECT_EQ(hs.st_ino, st.st_ino);
  ASSERT_EQ(lstat((sb.root_path + "/srv/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_mtime, 1300000000);
  char target[64] = {};
  readlink((sb.root_path + "/srv/link").c_str(), target, sizeof(target) - 1);
  EXPECT_STREQ(target, "/etc/passwd");
  ASSERT_EQ(lstat((sb.root_path + "/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  ASSERT_EQ(lstat((sb.root_path + "/run/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // Implicit parents: root-owned 0755.
  ASSERT_EQ(lstat((sb.root_path + "/dev").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, 0u);
}

TEST(Apply, SparseFileFromGnuTar) {
  Sandbox sb;
  std::string src = sb.tmp.path() + "/src";
  ASSERT_EQ(system(("mkdir -p " + src + " && truncate -s 5M " + src + "/sparse && echo end >> " +
                    src + "/sparse && tar -S -C " + src + " -cf " + sb.tmp.path() +
                    "/s.tar sparse")
                       .c_str()),
            0);
  std::string tar = Slurp(sb.tmp.path() + "/s.tar");
  auto r = ApplyString(sb.root, tar);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(Slurp(sb.root_path + "/sparse"), Slurp(src + "/sparse"));
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
}

TEST(Apply, AbsoluteAndDotNamesStayInsideRoot) {
  Sandbox sb;
  std::string tar = MakeTar({File("/etc/passwd", "root"), File("./a/./b", "ab"),
                             File("x/../y", "y"), DirEntry("./")});
  auto r = ApplyString(sb.root, tar);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(Slurp(sb.root_path + "/etc/passwd"), "root");
  EXPECT_EQ(Slurp(sb.root_path + "/a/b"), "ab");
  EXPECT_EQ(Slurp(sb.root_path + "/y"), "y");
}

TEST(Apply, ReplacesExistingNonDirsKeepsExistingDirs) {
  Sandbox sb;
  auto r = ApplyString(sb.root, MakeTar({DirEntry("d"), File("d/keep", "k"), File("f", "old"),
                                         Symlink("l", "f"), DirEntry("was_dir"),
                                         File("was_dir/x")}));
  ASSERT_TRUE(r) << r.error().message();
  TarEntry d2 = DirEntry("d", 0700);
  d2.uid = 99;
  r = ApplyString(sb.root, MakeTar({d2, File("f", "new"), File("l", "file now"),
                                    File("was_dir", "file")}));
  ASSERT_TRUE(r) << r.error().message();
  struct stat st;
  ASSERT_EQ(lstat((sb.root_path + "/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 99u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(Slurp(sb.root_path + "/d/keep"), "k");
  EXPECT_EQ(Slurp(sb.root_path + "/f"), "new");
  ASSERT_EQ(lstat((sb.root_path + "/l").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(Slurp(sb.root_path + "/f"), "new");  // the old symlink target untouched
  EXPECT_EQ(Slurp(sb.root_path + "/was_dir"), "file");
}

TEST(Apply, OverlayWhiteoutsBecomeDevicesAndOpaqueXattr) {
  Sandbox sb;
  ASSERT_TRUE(ApplyString(sb.root, MakeTar({DirEntry("etc"), File("etc/old"), DirEntry("opq"),
                                            File("opq/a")})));
  TarEntry wh = File("etc/.wh.old", "");
  wh.perm = 0;
  wh.uid = 5;
  TarEntry opq = File("opq/.wh..wh..opq", "");
  opq.perm = 0;
  auto r = ApplyString(sb.root, MakeTar({DirEntry("etc"), wh, DirEntry("opq"), opq,
                                         File("opq/b"), File(".wh.gone", "")}));
  ASSERT_TRUE(r) << r.error().message();
  struct stat st;
  ASSERT_EQ(lstat((sb.root_path + "/etc/old").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(st.st_uid, 5u);
  EXPECT_FALSE(Lexists(sb.root_path + "/etc/.wh.old"));
  ASSERT_EQ(lstat((sb.root_path + "/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  char v[4];
  ssize_t n = getxattr((sb.root_path + "/opq").c_str(), "trusted.overlay.opaque", v, sizeof(v));
  ASSERT_EQ(n, 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(Lexists(sb.root_path + "/opq/.wh..wh..opq"));
  EXPECT_TRUE(Lexists(sb.root_path + "/opq/a"));  // overlay hides it; the upper keeps it
  EXPECT_TRUE(Lexists(sb.root_path + "/opq/b"));
}

TEST(Apply, PlainWhiteoutsDelete) {
  Sandbox sb;
  ASSERT_TRUE(ApplyString(sb.root, MakeTar({DirEntry("etc"), File("etc/old"), DirEntry("etc/tree"),
                                            File("etc/tree/x"), DirEntry("opq"), File("opq/a")}),
                          Whiteouts::kPlain));
  auto r = ApplyString(sb.root,
                       MakeTar({File("etc/.wh.old", ""), File("etc/.wh.tree", ""), DirEntry("opq"),
                                File("opq/b"), File("opq/.wh..wh..opq", "")}),
                       Whiteouts::kPlain);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(Lexists(sb.root_path + "/etc/old"));
  EXPECT_FALSE(Lexists(sb.root_path + "/etc/tree"));
  EXPECT_FALSE(Lexists(sb.root_path + "/opq/a"));  // from the earlier layer
  EXPECT_TRUE(Lexists(sb.root_path + "/opq/b"));   // from this layer, before the marker
  EXPECT_FALSE(Lexists(sb.root_path + "/opq/.wh..wh..opq"));
}

// Every hostile archive must fail with kInvalidArgument naming the entry, and leave
// outside/ (a sibling of root, and the target of absolute and relative symlinks) empty.
struct HostileCase {
  const char* label;
  std::vector<TarEntry> (*entries)(const std::string& outside);
  const char* entry;  // named in the message
};

std::vector<TarEntry> Dotdot(const std::string&) { return {File("../outside/evil")}; }
std::vector<TarEntry> DeepDotdot(const std::string&) { return {File("a/../../outside/evil")}; }
std::vector<TarEntry> DotdotDir(const std::string&) { return {DirEntry("../outside/evil")}; }
std::vector<TarEntry> AbsSymlinkThenWrite(const std::string& o) {
  return {Symlink("link", o), File("link/evil")};
}
std::vector<TarEntry> RelSymlinkThenWrite(const std::string&) {
  return {Symlink("link", "../outside"), File("link/evil")};
}
std::vector<TarEntry> SymlinkThenDir(const std::string& o) {
  return {Symlink("link", o), DirEntry("link/evil")};
}
std::vector<TarEntry> SymlinkThenSymlink(const std::string& o) {
  return {Symlink("link", o), Symlink("link/evil", "/x")};
}
std::vector<TarEntry> SymlinkDeepThenWrite(const std::string& o) {
  return {DirEntry("a"), Symlink("a/link", o), File("a/link/sub/evil")};
}
std::vector<TarEntry> HardlinkOutside(const std::string&) {
  return {Hardlink("evil", "../outside/target")};
}
std::vector<TarEntry> HardlinkThroughSymlink(const std::string& o) {
  return {Symlink("link", o), Hardlink("evil", "link/target")};
}
std::vector<TarEntry> HardlinkIntoSymlinkDir(const std::string& o) {
  return {File("f"), Symlink("link", o), Hardlink("link/evil", "f")};
}
std::vector<TarEntry> WhiteoutDotdot(const std::string&) { return {File("a/.wh..", "")}; }
std::vector<TarEntry> WhiteoutDot(const std::string&) { return {File(".wh..", "")}; }
std::vector<TarEntry> WhiteoutThroughSymlink(const std::string& o) {
  return {Symlink("link", o), File("link/.wh.evil", "")};
}
std::vector<TarEntry> OpaqueThroughSymlink(const std::string& o) {
  return {Symlink("link", o), File("link/.wh..wh..opq", "")};
}
std::vector<TarEntry> DeviceThroughSymlink(const std::string& o) {
  TarEntry f;
  f.name = "link/evil";
  f.type = AE_IFIFO;
  return {Symlink("link", o), f};
}

TEST(Apply, RefusesHostileArchives) {
  std::vector<HostileCase> cases = {
      {"dotdot", Dotdot, "../outside/evil"},
      {"deep dotdot", DeepDotdot, "a/../../outside/evil"},
      {"dotdot dir", DotdotDir, "../outside/evil"},
      {"absolute symlink then write", AbsSymlinkThenWrite, "link/evil"},
      {"relative symlink then write", RelSymlinkThenWrite, "link/evil"},
      {"symlink then dir", SymlinkThenDir, "link/evil"},
      {"symlink then symlink", SymlinkThenSymlink, "link/evil"},
      {"nested symlink then write", SymlinkDeepThenWrite, "a/link/sub/evil"},
      {"hardlink outside", HardlinkOutside, "evil"},
      {"hardlink through symlink", HardlinkThroughSymlink, "evil"},
      {"hardlink placed through symlink", HardlinkIntoSymlinkDir, "link/evil"},
      {"whiteout ..", WhiteoutDotdot, "a/.wh.."},
      {"whiteout .", WhiteoutDot, ".wh.."},
      {"whiteout through symlink", WhiteoutThroughSymlink, "link/.wh.evil"},
      {"opaque through symlink", OpaqueThroughSymlink, "link/.wh..wh..opq"},
      {"fifo through symlink", DeviceThroughSymlink, "link/evil"},
  };
  for (auto mode : {Whiteouts::kOverlay, Whiteouts::kPlain}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(c.label);
      Sandbox sb;
      // Something in outside/ for hardlinks and whiteouts to aim at; it must survive.
      ASSERT_TRUE(WriteFileAtomic(sb.outside + "/target", "precious"));
      std::string tar = MakeTar(c.entries(sb.outside));
      auto r = ApplyString(sb.root, tar, mode);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error().message();
      EXPECT_NE(r.error().message().find("layer entry \"" + std::string(c.entry)),
                std::string::npos)
          << r.error().message();
      EXPECT_EQ(sb.OutsideNames(), std::vector<std::string>{"target"});
      EXPECT_EQ(Slurp(sb.outside + "/target"), "precious");
      char v[4];
      EXPECT_LT(getxattr(sb.outside.c_str(), "trusted.overlay.opaque", v, sizeof(v)), 0);
      // Nothing next to root either.
      auto siblings = ListDir(sb.tmp.path()).value();
      EXPECT_EQ(siblings, (std::vector<std::string>{"outside", "root"}));
    }
  }
}

// Issue 7 item 12: whiteout names that would be taken literally. Item 3: owners that would
// wrap to root. Each is refused naming the entry and the reason, nothing is made for it.
TEST(Apply, RefusesUnknownWhiteoutNamesWhiteoutParentsAndIdsPast2To31) {
  auto with_ids = [](const std::string& name, la_int64_t uid, la_int64_t gid) {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open(
        a, &out, nullptr,
        [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
          static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
          return static_cast<la_ssize_t>(n);
        },
        nullptr);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 04755);
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_size(e, 1);
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    archive_write_data(a, "x", 1);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    return out;
  };
  struct Case {
    const char* label;
    std::string tar;
    const char* entry;
    const char* why;
  };
  std::vector<Case> cases = {
      {"unknown .wh..wh. name", MakeTar({DirEntry("d"), File("d/.wh..wh.x", "")}),
       "d/.wh..wh.x", "unknown whiteout name \".wh..wh.x\""},
      {".wh..wh. alone", MakeTar({File(".wh..wh.", "")}), ".wh..wh.", "unknown whiteout name"},
      {"whiteout-named parent", MakeTar({File(".wh.etc/f", "x")}), ".wh.etc/f",
       "parent directory \".wh.etc\" has a whiteout name"},
      {"whiteout-named dir", MakeTar({DirEntry("a/.wh.b"), File("a/.wh.b/c")}), "a/.wh.b/c",
       "parent directory \".wh.b\""},
      {"uid 2^32", with_ids("f", 4294967296LL, 0), "f", "owner uid 4294967296 is outside"},
      {"uid 2^32-1", with_ids("f", 4294967295LL, 0), "f", "owner uid 4294967295 is outside"},
      {"uid 2^31", with_ids("f", 2147483648LL, 0), "f", "owner uid 2147483648 is outside"},
      {"gid 2^32", with_ids("f", 0, 4294967296LL), "f", "owner gid 4294967296 is outside"},
  };
  for (auto mode : {Whiteouts::kOverlay, Whiteouts::kPlain}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(c.label);
      Sandbox sb;
      auto r = ApplyString(sb.root, c.tar, mode);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << r.error().message();
      EXPECT_NE(r.error().message().find("layer entry \"" + std::string(c.entry) + "\": " + c.why),
                std::string::npos)
          << r.error().message();
      struct stat st;
      EXPECT_NE(lstat((sb.root_path + "/f").c_str(), &st), 0);  // nothing owned by root
      EXPECT_NE(lstat((sb.root_path + "/.wh.etc").c_str(), &st), 0);
      EXPECT_NE(lstat((sb.root_path + "/d/.wh.x").c_str(), &st), 0);
    }
  }
  // The largest id allowed, and the opaque marker, still apply.
  Sandbox sb;
  auto ok = ApplyString(sb.root, with_ids("f", 2147483647LL, 2147483647LL));
  ASSERT_TRUE(ok) << ok.error().message();
  struct stat st;
  ASSERT_EQ(lstat((sb.root_path + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 2147483647u);
  auto opq = ApplyString(sb.root, MakeTar({DirEntry("o"), File("o/.wh..wh..opq", "")}));
  EXPECT_TRUE(opq) << opq.error().message();
}

TEST(Apply, FileOverSymlinkReplacesTheLinkNotItsTarget) {
  Sandbox sb;
  ASSERT_TRUE(WriteFileAtomic(sb.outside + "/target", "precious"));
  TarEntry f = File("link", "mine");
  f.perm = 0777;
  auto r = ApplyString(sb.root, MakeTar({Symlink("link", sb.outside + "/target"), f}));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(Slurp(sb.outside + "/target"), "precious");
  struct stat st;
  ASSERT_EQ(stat((sb.outside + "/target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(lstat((sb.root_path + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(sb.OutsideNames(), std::vector<std::string>{"target"});
}

TEST(Apply, EmptyInputIsAnEmptyLayer) {
  Sandbox sb;
  auto r = ApplyString(sb.root, "");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, Digest::Of(""));
  std::string tar = MakeTar({});
  r = ApplyString(sb.root, tar);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
  EXPECT_EQ(ListDir(sb.root_path).value().size(), 0u);
}

}  // namespace
}  // namespace shale::layer
