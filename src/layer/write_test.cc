#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "layer/internal.h"
#include "layer/layer.h"
#include "layer/test_util.h"
#include "util/digest.h"

namespace shale::layer {
namespace {

using namespace testing;

struct ReadEntry {
  std::string name;
  mode_t mode;
  std::string hardlink, symlink;
  int64_t size, mtime;
  uid_t uid;
  std::vector<std::string> xattrs;
  unsigned rdev_major, rdev_minor;
};

std::vector<ReadEntry> ListTar(const std::string& tar) {
  std::vector<ReadEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    ReadEntry r;
    r.name = archive_entry_pathname(e);
    r.mode = archive_entry_mode(e);
    if (archive_entry_hardlink(e)) r.hardlink = archive_entry_hardlink(e);
    if (archive_entry_symlink(e)) r.symlink = archive_entry_symlink(e);
    r.size = archive_entry_size(e);
    r.mtime = archive_entry_mtime(e);
    r.uid = static_cast<uid_t>(archive_entry_uid(e));
    r.rdev_major = archive_entry_rdevmajor(e);
    r.rdev_minor = archive_entry_rdevminor(e);
    const char* n;
    const void* v;
    size_t s;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &n, &v, &s) == ARCHIVE_OK) r.xattrs.push_back(n);
    out.push_back(r);
  }
  archive_read_free(a);
  return out;
}

std::vector<std::string> Names(const std::vector<ReadEntry>& es) {
  std::vector<std::string> n;
  for (auto& e : es) n.push_back(e.name);
  return n;
}

// An overlay-style upper dir: whiteout device, opaque dir, hardlinks, symlink, xattrs.
void MakeUpper(const std::string& u) {
  ASSERT_EQ(system(("mkdir -p " + u + "/etc/sub " + u + "/opq " + u + "/b && echo pw > " + u +
                    "/etc/passwd && echo z > " + u + "/etc/sub/z && ln " + u + "/etc/passwd " + u +
                    "/b/hard && ln -s ../etc/passwd " + u + "/b/sym && mknod " + u +
                    "/etc/group c 0 0 && mknod " + u + "/b/null c 1 3 && mkfifo " + u +
                    "/b/fifo && echo o > " + u + "/opq/new && touch -d @1600000000 " + u +
                    "/etc/passwd " + u + "/etc/sub/z " + u + "/opq/new && chown 1000:1000 " + u +
                    "/etc/sub/z")
                       .c_str()),
            0);
  ASSERT_EQ(setxattr((u + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(setxattr((u + "/etc").c_str(), "trusted.overlay.origin", "xx", 2, 0), 0);
  ASSERT_EQ(setxattr((u + "/etc/passwd").c_str(), "user.note", "n", 1, 0), 0);
  ASSERT_EQ(system(("touch -d @1700000000 " + u + "/etc/sub " + u + "/etc " + u + "/opq " + u +
                    "/b")
                       .c_str()),
            0);
}

std::string WriteDiffString(const Dir& d, const WriteOptions& o = {}, bool tree = false) {
  UniqueFd out(memfd_create("tar", MFD_CLOEXEC));
  auto r = tree ? WriteTree(d, out.get(), o) : WriteDiff(d, out.get(), o);
  EXPECT_TRUE(r) << r.error().message();
  std::string s = ReadFd(out.get());
  if (r) {
    EXPECT_EQ(r->diff_id, Digest::Of(s));
    EXPECT_EQ(r->size, static_cast<int64_t>(s.size()));
  }
  return s;
}

TEST(WriteDiff, SortedWhiteoutsOpaqueHardlinksXattrs) {
  Sandbox sb;
  MakeUpper(sb.root_path);
  std::string tar = WriteDiffString(sb.root);
  auto es = ListTar(tar);
  EXPECT_EQ(Names(es), (std::vector<std::string>{
                           "b/", "b/fifo", "b/hard", "b/null", "b/sym", "etc/", "etc/.wh.group",
                           "etc/passwd", "etc/sub/", "etc/sub/z", "opq/", "opq/.wh..wh..opq",
                           "opq/new"}));
  std::map<std::string, ReadEntry> by;
  for (auto& e : es) by[e.name] = e;
  EXPECT_EQ(by["etc/.wh.group"].mode, static_cast<mode_t>(AE_IFREG));
  EXPECT_EQ(by["etc/.wh.group"].size, 0);
  EXPECT_EQ(by["opq/.wh..wh..opq"].mode, static_cast<mode_t>(AE_IFREG));
  EXPECT_EQ(by["opq/.wh..wh..opq"].mtime, 1700000000);
  // The first name found in sorted order holds the data; the later one links to it.
  EXPECT_EQ(by["etc/passwd"].hardlink, "b/hard");
  EXPECT_EQ(by["b/hard"].size, 3);
  EXPECT_EQ(by["b/sym"].symlink, "../etc/passwd");
  EXPECT_EQ(by["b/null"].mode & S_IFMT, static_cast<mode_t>(S_IFCHR));
  EXPECT_EQ(by["b/null"].rdev_minor, 3u);
  EXPECT_EQ(by["b/fifo"].mode & S_IFMT, static_cast<mode_t>(S_IFIFO));
  EXPECT_EQ(by["etc/sub/z"].uid, 1000u);
  EXPECT_EQ(by["etc/sub/z"].mtime, 1600000000);
  EXPECT_TRUE(by["etc/"].xattrs.empty());  // trusted.overlay.* never leaves the upper
  EXPECT_EQ(by["b/hard"].xattrs, std::vector<std::string>{"user.note"});
  EXPECT_TRUE(by["opq/"].xattrs.empty());
  // Byte-identical on a second run.
  EXPECT_EQ(WriteDiffString(sb.root), tar);
}

TEST(WriteDiff, RoundTripThroughApplyGivesBackWhiteoutsAndSameBytes) {
  Sandbox sb;
  MakeUpper(sb.root_path);
  std::string tar = WriteDiffString(sb.root);
  Dir back = Dir::Create(sb.tmp.path() + "/back").value();
  auto r = ApplyString(back, tar);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
  struct stat st;
  ASSERT_EQ(lstat((back.path() + "/etc/group").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v[4];
  EXPECT_EQ(getxattr((back.path() + "/opq").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  struct stat a, b;
  ASSERT_EQ(lstat((back.path() + "/etc/passwd").c_str(), &a), 0);
  ASSERT_EQ(lstat((back.path() + "/b/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  // Writing the applied dir gives the very same tar.
  EXPECT_EQ(WriteDiffString(back), tar);
  // GNU tar reads it too.
  std::string tarfile = sb.tmp.path() + "/d.tar";
  ASSERT_TRUE(WriteFileAtomic(tarfile, tar));
  EXPECT_EQ(system(("tar -tf " + tarfile + " > /dev/null").c_str()), 0);
}

TEST(WriteDiff, ClampMtime) {
  Sandbox sb;
  MakeUpper(sb.root_path);
  WriteOptions o;
  o.clamp_mtime = 1650000000;
  for (auto& e : ListTar(WriteDiffString(sb.root, o))) EXPECT_LE(e.mtime, 1650000000) << e.name;
  auto es = ListTar(WriteDiffString(sb.root, o));
  for (auto& e : es) {
    if (e.name == "etc/passwd" || e.name == "b/hard") {
      EXPECT_EQ(e.mtime, 1600000000);
    }
  }
}

TEST(WriteTree, KeepsDevicesAsDevices) {
  Sandbox sb;
  MakeUpper(sb.root_path);
  auto es = ListTar(WriteDiffString(sb.root, {}, /*tree=*/true));
  std::map<std::string, ReadEntry> by;
  for (auto& e : es) by[e.name] = e;
  EXPECT_EQ(by.count("etc/.wh.group"), 0u);
  EXPECT_EQ(by.count("opq/.wh..wh..opq"), 0u);
  EXPECT_EQ(by["etc/group"].mode & S_IFMT, static_cast<mode_t>(S_IFCHR));
}

TEST(CopyDiff, KeepsEverythingIncludingWhiteoutsAndOpaque) {
  Sandbox sb;
  MakeUpper(sb.root_path);
  Dir to = Dir::Create(sb.tmp.path() + "/copy").value();
  auto r = CopyDiff(sb.root, to);
  ASSERT_TRUE(r) << r.error().message();
  struct stat st;
  ASSERT_EQ(lstat((to.path() + "/etc/group").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  char v[4];
  EXPECT_EQ(getxattr((to.path() + "/opq").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(getxattr((to.path() + "/etc").c_str(), "trusted.overlay.origin", v, sizeof(v)), 2);
  struct stat a, b;
  ASSERT_EQ(lstat((to.path() + "/etc/passwd").c_str(), &a), 0);
  ASSERT_EQ(lstat((to.path() + "/b/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(Slurp(to.path() + "/etc/passwd"), "pw\n");
  // Same tar from the copy as from the original: owners, modes, times, links all kept.
  EXPECT_EQ(WriteDiffString(to), WriteDiffString(sb.root));
}

// commit -p false (issue 7 item 6): the tar and the new layer's files come from one read.
TEST(WriteDiffAndCopy, CopyKeepsEverythingAndMatchesTheTar) {
  Sandbox sb;
  MakeUpper(sb.root_path);
  Dir to = Dir::Create(sb.tmp.path() + "/copy").value();
  UniqueFd out(memfd_create("tar", MFD_CLOEXEC));
  auto r = WriteDiffAndCopy(sb.root, out.get(), to);
  ASSERT_TRUE(r) << r.error().message();
  std::string tar = ReadFd(out.get());
  EXPECT_EQ(tar, WriteDiffString(sb.root));  // the same tar as WriteDiff
  EXPECT_EQ(WriteDiffString(to), tar);       // and the copy packs the same
  char v[4];
  EXPECT_EQ(getxattr((to.path() + "/opq").c_str(), "trusted.overlay.opaque", v, sizeof(v)), 1);
  EXPECT_EQ(getxattr((to.path() + "/etc").c_str(), "trusted.overlay.origin", v, sizeof(v)), 2);
  struct stat a, b;
  ASSERT_EQ(lstat((to.path() + "/etc/passwd").c_str(), &a), 0);
  ASSERT_EQ(lstat((to.path() + "/b/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ASSERT_EQ(lstat((to.path() + "/etc/group").c_str(), &a), 0);
  EXPECT_TRUE(internal::IsWhiteoutDevice(a));
}

// A file rewritten (other sizes, other bytes) all the time while it is packed: every run,
// the tar-split of the tar rebuilds the tar exactly from the copy.
TEST(WriteDiffAndCopy, FileChangingDuringThePackStillMatchesItsCopy) {
  Sandbox sb;
  ASSERT_EQ(mkdir((sb.root_path + "/race").c_str(), 0755), 0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (unsigned i = 0; !stop; i++) {
      std::string data(static_cast<size_t>(i * 7919 % 300000), static_cast<char>('a' + i % 26));
      int fd = open((sb.root_path + "/race/f").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0644);
      if (fd < 0) continue;
      (void)!write(fd, data.data(), data.size());
      close(fd);
    }
  });
  for (int run = 0; run < 30; run++) {
    Dir to = Dir::Create(sb.tmp.path() + "/copy" + std::to_string(run)).value();
    UniqueFd out(memfd_create("tar", MFD_CLOEXEC));
    auto r = WriteDiffAndCopy(sb.root, out.get(), to);
    ASSERT_TRUE(r) << r.error().message();
    UniqueFd split(memfd_create("split", MFD_CLOEXEC));
    lseek(out.get(), 0, SEEK_SET);
    auto s = SplitTar(out.get(), split.get());
    ASSERT_TRUE(s) << s.error().message();
    lseek(split.get(), 0, SEEK_SET);
    UniqueFd back(memfd_create("back", MFD_CLOEXEC));
    auto w = Reassemble(to, split.get(), back.get());
    ASSERT_TRUE(w) << "run " << run << ": " << w.error().message();
    EXPECT_EQ(w->diff_id, r->diff_id);
  }
  stop = true;
  writer.join();
}

TEST(Changes, AddedChangedDeletedOverLowers) {
  Sandbox sb;
  std::string lower = sb.tmp.path() + "/lower", lower2 = sb.tmp.path() + "/lower2";
  ASSERT_EQ(system(("mkdir -p " + lower + "/tmp " + lower + "/etc " + lower + "/opq " + lower2 +
                    "/opq && echo > " + lower + "/etc/passwd && echo > " + lower +
                    "/etc/group && echo > " + lower + "/opq/a && echo > " + lower2 +
                    "/opq/c && echo > " + lower + "/gone && mknod " + lower + "/old c 0 0")
                       .c_str()),
            0);
  std::string u = sb.root_path;
  ASSERT_EQ(system(("mkdir -p " + u + "/tmp " + u + "/etc " + u + "/opq " + u +
                    "/new/deep && echo > " + u + "/tmp/c1.txt && echo x > " + u +
                    "/etc/passwd && mknod " + u + "/etc/group c 0 0 && echo > " + u +
                    "/opq/b && echo > " + u + "/new/deep/f && echo > " + u + "/old")
                       .c_str()),
            0);
  ASSERT_EQ(setxattr((u + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  // lower (top) has a whiteout for "old", so "old" in upper is new again.
  auto r = Changes(sb.root, {lower, lower2});
  ASSERT_TRUE(r) << r.error().message();
  std::vector<std::string> got;
  for (auto& c : *r) got.push_back(std::string(1, c.kind) + " " + c.path);
  EXPECT_EQ(got, (std::vector<std::string>{"C /etc", "D /etc/group", "C /etc/passwd", "A /new",
                                           "A /new/deep", "A /new/deep/f", "A /old", "C /opq",
                                           "D /opq/a", "A /opq/b", "D /opq/c", "C /tmp",
                                           "A /tmp/c1.txt"}));
}

TEST(Compression, DecompressAndDeterministicGzip) {
  std::string data;
  for (int i = 0; i < 200000; i++) data += std::to_string(i * 7919 % 1000) + ",";
  for (const std::string& blob : {data, Gzip(data), Zstd(data)}) {
    UniqueFd in = MemFd(blob);
    UniqueFd out(memfd_create("out", MFD_CLOEXEC));
    auto r = Decompress(in.get(), out.get());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(ReadFd(out.get()), data);
  }
  UniqueFd in = MemFd(data);
  UniqueFd out(memfd_create("gz", MFD_CLOEXEC));
  Digest plain;
  auto d = GzipCompress(in.get(), out.get(), &plain);
  ASSERT_TRUE(d) << d.error().message();
  std::string gz = ReadFd(out.get());
  EXPECT_EQ(*d, Digest::Of(gz));
  EXPECT_EQ(plain, Digest::Of(data));
  EXPECT_EQ(Gzip(data), gz);  // deterministic
  EXPECT_LT(gz.size(), data.size() / 2);
  // gzip(1) agrees, and the header carries no name and mtime 0.
  EXPECT_EQ(gz[3] & 0x08, 0);
  EXPECT_EQ(gz.substr(4, 4), std::string(4, '\0'));
  ScopedTempDir t = ScopedTempDir::Make("/tmp", "layer-gz-").value();
  ASSERT_TRUE(WriteFileAtomic(t.path() + "/x.gz", gz));
  EXPECT_EQ(system(("gzip -dc " + t.path() + "/x.gz > " + t.path() + "/x").c_str()), 0);
  EXPECT_EQ(Slurp(t.path() + "/x"), data);
  // Concatenated members decompress as one stream.
  UniqueFd cin = MemFd(gz + gz);
  UniqueFd cout(memfd_create("out", MFD_CLOEXEC));
  ASSERT_TRUE(Decompress(cin.get(), cout.get()));
  EXPECT_EQ(ReadFd(cout.get()), data + data);
}

// push --compression-format zstd: the blob is zstd(1)-readable, its digest is the sha256 of
// what was written, and equal input gives equal output (a second push compresses to the
// same digest).
TEST(Compression, ZstdCompressIsReadableAndDeterministic) {
  std::string data;
  for (int64_t i = 0; i < 300000; i++) data += std::to_string(i * 7919 % 1000) + ",";
  std::string first;
  for (int round = 0; round < 2; ++round) {
    UniqueFd in = MemFd(data);
    UniqueFd out(memfd_create("zst", MFD_CLOEXEC));
    Digest plain;
    auto d = ZstdCompress(in.get(), out.get(), &plain);
    ASSERT_TRUE(d) << d.error().message();
    std::string z = ReadFd(out.get());
    EXPECT_EQ(*d, Digest::Of(z));
    EXPECT_EQ(plain, Digest::Of(data));
    EXPECT_LT(z.size(), data.size() / 2);
    if (round == 0) first = z; else EXPECT_EQ(z, first);
  }
  EXPECT_EQ(DetectCompression(first.substr(0, 8)), Compression::kZstd);
  ScopedTempDir t = ScopedTempDir::Make("/tmp", "layer-zst-").value();
  ASSERT_TRUE(WriteFileAtomic(t.path() + "/x.zst", first));
  EXPECT_EQ(system(("zstd -q -d -c " + t.path() + "/x.zst > " + t.path() + "/x").c_str()), 0);
  EXPECT_EQ(Slurp(t.path() + "/x"), data);
  UniqueFd zin = MemFd(first);
  UniqueFd zout(memfd_create("out", MFD_CLOEXEC));
  ASSERT_TRUE(Decompress(zin.get(), zout.get()));
  EXPECT_EQ(ReadFd(zout.get()), data);
}

// The error path of the tar writer (issue 7 item 5): a walk that fails after entries were
// buffered (here: out of fds deep in the tree, as when the tree changes under the walk).
// The writer used to flush the buffered block from its destructor into its freed digest
// context (a use-after-free under ASan) and to end the output with an end-of-archive
// trailer, so a partial tar looked whole. Now it fails naming the cause and writes no tar.
TEST(WriteTree, FailureMidWalkWritesNoPartialArchive) {
  Sandbox sb;
  ASSERT_EQ(system(("echo data > " + sb.root_path + "/a && mkdir -p " + sb.root_path +
                    "/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d")
                       .c_str()),
            0);
  UniqueFd out(memfd_create("tar", MFD_CLOEXEC));
  // New fds take the lowest free number; let the walk have only a few (one per level).
  int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(lowest, 0);
  close(lowest);
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(lowest + 8);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  auto r = WriteTree(sb.root, out.get());
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("Too many open files"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(ReadFd(out.get()), "");
}

}  // namespace
}  // namespace shale::layer
