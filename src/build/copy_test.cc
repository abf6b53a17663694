#include "build/copy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "util/fs.h"

namespace shale::build {
namespace {

TEST(CopyTest, DestinationRules) {
  EXPECT_EQ(NormalizeDest("x", "/app"), "/app/x");
  EXPECT_EQ(NormalizeDest("x/", "/app"), "/app/x/");
  EXPECT_EQ(NormalizeDest(".", "/app"), "/app");
  EXPECT_EQ(NormalizeDest("./", ""), "/");
  EXPECT_EQ(NormalizeDest("/a/../b/", "/app"), "/b/");
  EXPECT_EQ(NormalizeDest("../../x", "/app"), "/x");
  // A file lands on dest itself unless dest ends in "/" or is a directory.
  EXPECT_EQ(FileTarget("/a/b", "f", false), "/a/b");
  EXPECT_EQ(FileTarget("/a/b/", "f", false), "/a/b/f");
  EXPECT_EQ(FileTarget("/a/b", "f", true), "/a/b/f");
  EXPECT_EQ(FileTarget("/", "f", true), "/f");
  EXPECT_TRUE(HasWildcard("*.c"));
  EXPECT_FALSE(HasWildcard("a.c"));
}

class CopyTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "copytest-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
    ctx_ = tmp_.path() + "/ctx";
    ASSERT_TRUE(MakeDirsAbs(ctx_ + "/dir/sub"));
    ASSERT_TRUE(WriteFileAtomic(ctx_ + "/a.txt", "a"));
    ASSERT_TRUE(WriteFileAtomic(ctx_ + "/b.txt", "b"));
    ASSERT_TRUE(WriteFileAtomic(ctx_ + "/dir/sub/f", "f"));
    ASSERT_TRUE(WriteFileAtomic(tmp_.path() + "/outside", "secret"));
    ASSERT_EQ(symlink("../outside", (ctx_ + "/up").c_str()), 0);
    ASSERT_EQ(symlink("/dir", (ctx_ + "/abs-dir").c_str()), 0);
  }
  SourceTree Tree() {
    auto root = Dir::Open(ctx_);
    EXPECT_TRUE(root);
    auto m = IgnoreMatcher::Create({"b.txt"});
    EXPECT_TRUE(m);
    auto entries = ListContext(*root, *m);
    EXPECT_TRUE(entries);
    return SourceTree(std::move(*root), std::move(*entries));
  }
  ScopedTempDir tmp_;
  std::string ctx_;
};

TEST_F(CopyTreeTest, PlansFilesDirsAndGlobs) {
  SourceTree t = Tree();
  auto p = PlanCopy(t, {"a.txt"}, "/x", false, false);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->kind, "file");
  EXPECT_EQ(p->sources[0].target, "/x");
  p = PlanCopy(t, {"dir"}, "/d/", false, false);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "dir");
  EXPECT_EQ(p->sources[0].target, "/d");
  ASSERT_EQ(p->sources[0].items.size(), 3u);  // the dir itself, sub, sub/f
  EXPECT_EQ(p->sources[0].items[2].to, "sub/f");
  // A symlink in the context is followed inside it: /dir is the context's dir.
  p = PlanCopy(t, {"abs-dir"}, "/d/", false, false);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->sources[0].path, "dir");
  // Globs expand over the listing; excluded files never match.
  p = PlanCopy(t, {"*.txt"}, "/g/", false, false);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->sources.size(), 1u);
  EXPECT_EQ(p->sources[0].target, "/g/a.txt");
}

TEST_F(CopyTreeTest, RefusesWhatIsOutsideOrExcluded) {
  SourceTree t = Tree();
  auto p = PlanCopy(t, {"../outside"}, "/x", false, false);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("Forbidden path outside the build context"), std::string::npos);
  // ../outside through a symlink resolves to <ctx>/outside, which is not there.
  p = PlanCopy(t, {"up"}, "/x", false, false);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Errc::kNotFound);
  p = PlanCopy(t, {"b.txt"}, "/x", false, false);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("excluded by .dockerignore"), std::string::npos);
  p = PlanCopy(t, {"a.txt", "dir"}, "/x", false, false);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("end with a /"), std::string::npos);
}

TEST_F(CopyTreeTest, DigestFollowsContentModesAndNamesNotMtimes) {
  auto digest = [&] {
    SourceTree t = Tree();
    auto p = PlanCopy(t, {"."}, "/x/", false, false);
    EXPECT_TRUE(p);
    auto h = HashPlan(t, *p);
    EXPECT_TRUE(h);
    return *h;
  };
  std::string d0 = digest();
  EXPECT_EQ(d0.size(), 64u);
  struct timespec ts[2] = {{1, 0}, {1, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (ctx_ + "/a.txt").c_str(), ts, 0), 0);
  EXPECT_EQ(digest(), d0);
  ASSERT_EQ(chmod((ctx_ + "/a.txt").c_str(), 0600), 0);
  std::string d1 = digest();
  EXPECT_NE(d1, d0);
  ASSERT_TRUE(WriteFileAtomic(ctx_ + "/a.txt", "A", 0600));
  std::string d2 = digest();
  EXPECT_NE(d2, d1);
  // Excluded files do not count.
  ASSERT_TRUE(WriteFileAtomic(ctx_ + "/b.txt", "changed"));
  EXPECT_EQ(digest(), d2);
  ASSERT_EQ(rename((ctx_ + "/dir/sub/f").c_str(), (ctx_ + "/dir/sub/g").c_str()), 0);
  EXPECT_NE(digest(), d2);
}

TEST_F(CopyTreeTest, CopiesIntoARootedTree) {
  SourceTree t = Tree();
  std::string rootfs = tmp_.path() + "/rootfs";
  ASSERT_TRUE(MakeDirsAbs(rootfs + "/etc"));
  ASSERT_TRUE(MakeDirsAbs(rootfs + tmp_.path()));
  // A symlink in the target tree cannot redirect the write outside it.
  ASSERT_EQ(symlink(tmp_.path().c_str(), (rootfs + "/escape").c_str()), 0);
  auto root = Dir::Open(rootfs);
  ASSERT_TRUE(root);
  auto p = PlanCopy(t, {"a.txt"}, "/escape/outside", false, false);
  ASSERT_TRUE(p);
  auto r = CopyPlanInto(t, *p, *root, {7, 8}, 0640);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*ReadFile(tmp_.path() + "/outside"), "secret");
  struct stat st;
  ASSERT_EQ(stat((rootfs + tmp_.path() + "/outside").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  p = PlanCopy(t, {"dir"}, "/etc/d", true, false);
  ASSERT_TRUE(p);
  ASSERT_TRUE(CopyPlanInto(t, *p, *root, {}, std::nullopt));
  EXPECT_EQ(*ReadFile(rootfs + "/etc/d/sub/f"), "f");
}

}  // namespace
}  // namespace shale::build
