#include "sys/mount.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>

#include "util/fs.h"

namespace shale::sys {
namespace {

#define ASSERT_OK(expr)                                                   \
  do {                                                                    \
    auto&& r_ = (expr);                                                   \
    ASSERT_TRUE(r_.has_value()) << #expr << ": " << r_.error().message(); \
  } while (0)

void Touch(const std::string& path, const std::string& content = "x") {
  ASSERT_TRUE(WriteFileAtomic(path, content).has_value()) << path;
}

bool CanWrite(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// Each test gets its own temp dir; mounts made through Track() are detached in TearDown even
// when an assertion failed half way.
class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    auto t = ScopedTempDir::Make("/tmp", "shale-mount-test-");
    ASSERT_TRUE(t.has_value());
    tmp_ = std::move(*t);
  }
  void TearDown() override {
    while (!mounts_.empty()) mounts_.pop_back();  // newest first
  }
  std::string Dir(const std::string& rel) {
    std::string p = tmp_.path() + "/" + rel;
    EXPECT_TRUE(MakeDirsAbs(p).has_value());
    return p;
  }
  void Track(const std::string& target) { mounts_.emplace_back(target); }

  ScopedTempDir tmp_;
  std::vector<ScopedMount> mounts_;
};

TEST_F(MountTest, IsMountPointOnRootPlainDirAndMissing) {
  EXPECT_TRUE(IsMountPoint("/"));
  EXPECT_TRUE(IsMountPoint("/proc"));
  EXPECT_FALSE(IsMountPoint(Dir("plain")));
  EXPECT_FALSE(IsMountPoint(tmp_.path() + "/missing"));
}

TEST_F(MountTest, BindOfADirectoryOntoItselfIsAMountPoint) {
  // Same file system, same st_dev: only the mount ids tell them apart.
  std::string d = Dir("self");
  ASSERT_OK(Mount({"bind", d, d, {}}));
  Track(d);
  EXPECT_TRUE(IsMountPoint(d));
  ASSERT_OK(Unmount(d));
  EXPECT_FALSE(IsMountPoint(d));
}

TEST_F(MountTest, ReadOnlyBindNeedsTheRemountAndIsReadOnly) {
  std::string src = Dir("src"), dst = Dir("dst");
  Touch(src + "/file");
  ASSERT_OK(Mount({"bind", src, dst, {"rbind", "ro", "nosuid", "nodev"}}));
  Track(dst);
  EXPECT_TRUE(PathExists(dst + "/file"));
  EXPECT_FALSE(CanWrite(dst + "/new"));
  EXPECT_EQ(errno, EROFS);
  struct statvfs vfs;
  ASSERT_EQ(statvfs(dst.c_str(), &vfs), 0);
  EXPECT_TRUE(vfs.f_flag & ST_RDONLY);
  EXPECT_TRUE(vfs.f_flag & ST_NOSUID);
  EXPECT_TRUE(vfs.f_flag & ST_NODEV);
  EXPECT_TRUE(CanWrite(src + "/new")) << "the source must stay writable";
}

TEST_F(MountTest, TmpfsDataOptionsAndRemount) {
  std::string dst = Dir("tmpfs");
  ASSERT_OK(Mount({"tmpfs", "tmpfs", dst, {"nosuid", "size=1m", "mode=0711", "noexec"}}));
  Track(dst);
  struct statvfs vfs;
  ASSERT_EQ(statvfs(dst.c_str(), &vfs), 0);
  EXPECT_EQ(vfs.f_blocks * vfs.f_frsize, 1024u * 1024u);
  EXPECT_TRUE(vfs.f_flag & ST_NOEXEC);
  struct stat st;
  ASSERT_EQ(stat(dst.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_TRUE(CanWrite(dst + "/a"));
  ASSERT_OK(Mount({"tmpfs", "tmpfs", dst, {"remount", "ro"}}));
  EXPECT_FALSE(CanWrite(dst + "/b"));
}

TEST_F(MountTest, PropagationOnlyChange) {
  std::string dst = Dir("prop");
  ASSERT_OK(Mount({"tmpfs", "tmpfs", dst, {"size=64k"}}));
  Track(dst);
  ASSERT_OK(Mount({"", "", dst, {"shared"}}));
  auto info = ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(info.has_value());
  bool shared = false;
  for (size_t pos = 0; (pos = info->find(" " + dst + " ", pos)) != std::string::npos; pos++) {
    size_t eol = info->find('\n', pos);
    shared = shared || info->substr(pos, eol - pos).find("shared:") != std::string::npos;
  }
  EXPECT_TRUE(shared);
  ASSERT_OK(Mount({"", "", dst, {"private"}}));
}

TEST_F(MountTest, UnmountOfSomethingNotMountedIsSuccess) {
  ASSERT_OK(Unmount(Dir("nothing")));
  ASSERT_OK(Unmount(tmp_.path() + "/missing", /*lazy=*/true));
}

TEST_F(MountTest, MountErrorNamesTarget) {
  auto r = Mount({"bind", tmp_.path() + "/nope", Dir("t"), {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_NE(r.error().message().find(tmp_.path() + "/t"), std::string::npos) << r.error().message();
}

TEST_F(MountTest, ScopedMountDetachesOnDestructionAndMoveAssign) {
  std::string a = Dir("a"), b = Dir("b");
  ASSERT_OK(Mount({"tmpfs", "tmpfs", a, {"size=64k"}}));
  ASSERT_OK(Mount({"tmpfs", "tmpfs", b, {"size=64k"}}));
  {
    ScopedMount ma(a);
    ScopedMount mb(b);
    ma = std::move(mb);  // a is detached now; ma owns b
    EXPECT_FALSE(IsMountPoint(a));
    EXPECT_TRUE(IsMountPoint(b));
    EXPECT_EQ(mb.target(), "");
  }
  EXPECT_FALSE(IsMountPoint(b));
  ScopedMount released(a);
  released.Release();
}

// Both overlay paths: the new mount API and mount(2), selected by SHALE_OVERLAY_MOUNT.
class OverlayMountTest : public MountTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (GetParam()) setenv("SHALE_OVERLAY_MOUNT", "legacy", 1);
  }
  void TearDown() override {
    MountTest::TearDown();
    unsetenv("SHALE_OVERLAY_MOUNT");
  }
};

TEST_P(OverlayMountTest, ReadWriteOverlay) {
  std::string l1 = Dir("l1"), l2 = Dir("l2"), up = Dir("up"), work = Dir("work"),
              merged = Dir("merged");
  Touch(l1 + "/a", "top");
  Touch(l2 + "/a", "bottom");
  Touch(l2 + "/b", "b");
  OverlaySpec spec{{l1, l2}, {}, "", up, work, {}};
  ASSERT_OK(MountOverlay(spec, merged));
  Track(merged);
  EXPECT_TRUE(IsMountPoint(merged));
  EXPECT_EQ(ReadFile(merged + "/a").value_or(""), "top");
  EXPECT_EQ(ReadFile(merged + "/b").value_or(""), "b");
  Touch(merged + "/c", "new");
  EXPECT_EQ(ReadFile(up + "/c").value_or(""), "new");
}

TEST_P(OverlayMountTest, ReadOnlyOverlay) {
  std::string l1 = Dir("l1"), l2 = Dir("l2"), merged = Dir("merged");
  Touch(l2 + "/b", "b");
  OverlaySpec spec{{l1, l2}, {}, "", "", "", {}};
  ASSERT_OK(MountOverlay(spec, merged));
  Track(merged);
  EXPECT_EQ(ReadFile(merged + "/b").value_or(""), "b");
  EXPECT_FALSE(CanWrite(merged + "/c"));
  EXPECT_EQ(errno, EROFS);
}

TEST_P(OverlayMountTest, MissingLowerIsAnErrorNamingTarget) {
  std::string l1 = Dir("l1"), merged = Dir("merged");
  std::string missing = tmp_.path() + "/gone";
  OverlaySpec spec{{l1, missing}, {}, "", "", "", {}};
  auto r = MountOverlay(spec, merged);
  if (r) Track(merged);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find(merged), std::string::npos) << r.error().message();
  if (!GetParam()) {  // the new API names the refused layer
    EXPECT_NE(r.error().message().find(missing), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().code(), Errc::kNotFound);
  }
}

TEST_P(OverlayMountTest, RefusedMountCarriesTheKernelsReason) {
  std::string l1 = Dir("l1"), l2 = Dir("l2"), merged = Dir("merged");
  OverlaySpec spec{{l1, l2}, {}, "", "", "", {"no_such_overlay_option"}};
  auto r = MountOverlay(spec, merged);
  if (r) Track(merged);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find(merged), std::string::npos) << r.error().message();
  if (!GetParam()) {  // the new API reads the fs context's log
    EXPECT_NE(r.error().message().find("kernel: "), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("no_such_overlay_option"), std::string::npos);
  }
}

TEST_P(OverlayMountTest, LongStackUsesShortNames) {
  // 80 layers with long absolute paths: ~9 KB of options, more than one page for mount(2).
  std::string base = Dir("base");
  std::string links = Dir("base/l");
  OverlaySpec spec;
  spec.short_base = base;
  for (int i = 0; i < 80; i++) {
    std::string name =
        "layer-with-a-rather-long-directory-name-to-overflow-a-page-" + std::to_string(i) + "/diff";
    std::string diff = Dir("base/" + name);
    Touch(diff + "/f" + std::to_string(i), std::to_string(i));
    std::string link = "L" + std::to_string(i);
    ASSERT_EQ(symlink(("../" + name).c_str(), (links + "/" + link).c_str()), 0);
    spec.lowers.push_back(diff);
    spec.short_lowers.push_back("l/" + link);
  }
  spec.upper = Dir("base/ctr/diff");
  spec.work = Dir("base/ctr/work");
  spec.extra_options = {"index=off"};
  std::string merged = Dir("merged");
  char cwd_before[4096];
  ASSERT_NE(getcwd(cwd_before, sizeof cwd_before), nullptr);
  ASSERT_OK(MountOverlay(spec, merged));
  Track(merged);
  char cwd_after[4096];
  ASSERT_NE(getcwd(cwd_after, sizeof cwd_after), nullptr);
  EXPECT_STREQ(cwd_before, cwd_after);
  for (int i = 0; i < 80; i++)
    EXPECT_EQ(ReadFile(merged + "/f" + std::to_string(i)).value_or(""), std::to_string(i));
  Touch(merged + "/up", "u");
  EXPECT_TRUE(PathExists(spec.upper + "/up"));
}

INSTANTIATE_TEST_SUITE_P(NewApiAndLegacy, OverlayMountTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Legacy" : "NewApi"; });

}  // namespace
}  // namespace shale::sys
