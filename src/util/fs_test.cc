#include "util/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "util/dir.h"

namespace shale {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override { tmp_ = std::move(ScopedTempDir::Make("/tmp", "shale-fs-test-").value()); }
  ScopedTempDir tmp_;
};

TEST_F(FsTest, WriteFileAtomicReplacesWholeAndLeavesNoTemp) {
  std::string p = tmp_.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(p, "one"));
  ASSERT_TRUE(WriteFileAtomic(p, "two"));
  EXPECT_EQ(ReadFile(p).value(), "two");
  auto names = ListDir(tmp_.path()).value();
  EXPECT_EQ(names, std::vector<std::string>{"f"});
}

TEST_F(FsTest, WriteFileAtomicFailureLeavesOldContent) {
  std::string p = tmp_.path() + "/f";
  ASSERT_TRUE(WriteFileAtomic(p, "old"));
  // The target's directory vanishing makes the write fail; the old file is untouched.
  EXPECT_FALSE(WriteFileAtomic(tmp_.path() + "/missing/f", "new"));
  EXPECT_EQ(ReadFile(p).value(), "old");
}

TEST_F(FsTest, DirResolvesInsideRoot) {
  Dir root = Dir::Create(tmp_.path() + "/root").value();
  ASSERT_TRUE(MakeDirsAbs(tmp_.path() + "/outside"));
  ASSERT_EQ(symlink("/", (tmp_.path() + "/root/escape").c_str()), 0);
  ASSERT_EQ(symlink("../../outside", (tmp_.path() + "/root/up").c_str()), 0);
  // Absolute and ".." symlinks resolve inside the root: creating through them stays inside.
  ASSERT_TRUE(root.OpenAt("escape/x", O_WRONLY | O_CREAT, 0644));
  EXPECT_TRUE(PathExists(tmp_.path() + "/root/x"));
  EXPECT_FALSE(root.OpenAt("up/y", O_WRONLY | O_CREAT, 0644));  // "outside" is not in root
  EXPECT_FALSE(PathExists(tmp_.path() + "/outside/y"));
  ASSERT_TRUE(root.OpenAt("../../z", O_WRONLY | O_CREAT, 0644));
  EXPECT_TRUE(PathExists(tmp_.path() + "/root/z"));
}

TEST_F(FsTest, RemoveTreeDoesNotFollowSymlinks) {
  ASSERT_TRUE(MakeDirsAbs(tmp_.path() + "/keep"));
  ASSERT_TRUE(WriteFileAtomic(tmp_.path() + "/keep/file", "x"));
  ASSERT_TRUE(MakeDirsAbs(tmp_.path() + "/gone/sub"));
  ASSERT_EQ(symlink((tmp_.path() + "/keep").c_str(), (tmp_.path() + "/gone/sub/link").c_str()), 0);
  ASSERT_TRUE(RemoveTreeAbs(tmp_.path() + "/gone"));
  EXPECT_FALSE(PathExists(tmp_.path() + "/gone"));
  EXPECT_TRUE(PathExists(tmp_.path() + "/keep/file"));
}

TEST_F(FsTest, LockIsExclusive) {
  std::string p = tmp_.path() + "/lock";
  auto a = FileLock::Acquire(p, FileLock::Mode::kExclusive);
  ASSERT_TRUE(a);
  auto b = FileLock::TryAcquire(p, FileLock::Mode::kExclusive);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), Errc::kBusy);
}

}  // namespace
}  // namespace shale
