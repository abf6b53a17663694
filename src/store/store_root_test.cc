#include "store/store_root.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "util/fs.h"

namespace shale::store {
namespace {

class StoreRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "shale-root-test-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
  }
  mode_t ModeOf(const std::string& p) {
    struct stat st;
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  ScopedTempDir tmp_;
};

TEST_F(StoreRootTest, RefusesEmptyRelativeAndFileSystemRoot) {
  for (std::string bad : {"", "relative/dir", "/", "//", "/./", "/tmp/.."}) {
    auto r = PrepareRoot(bad);
    ASSERT_FALSE(r) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.error().code(), Errc::kInvalidArgument) << bad;
  }
}

TEST_F(StoreRootTest, RefusesALinkToTheFileSystemRoot) {
  std::string link = tmp_.path() + "/slash";
  ASSERT_EQ(::symlink("/", link.c_str()), 0);
  EXPECT_FALSE(PrepareRoot(link));
}

TEST_F(StoreRootTest, RefusesANonEmptyDirThatIsNotAStoreAndTouchesNothing) {
  // The shape of /var: a tmp/ with someone's file, and other content.
  std::string var = tmp_.path() + "/var";
  ASSERT_TRUE(MakeDirsAbs(var + "/tmp", 0755));
  ASSERT_TRUE(WriteFileAtomic(var + "/tmp/someone-elses", "x"));
  ASSERT_TRUE(WriteFileAtomic(var + "/lib", "y"));
  auto r = PrepareRoot(var);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("not a shale store"), std::string::npos)
      << r.error().message();
  EXPECT_FALSE(PathExists(var + "/" + std::string(kMarkerName)));
  EXPECT_TRUE(PathExists(var + "/tmp/someone-elses"));
  EXPECT_EQ(ModeOf(var), 0755u) << "modes changed on a dir that is not ours";
}

TEST_F(StoreRootTest, RefusesAFile) {
  std::string f = tmp_.path() + "/file";
  ASSERT_TRUE(WriteFileAtomic(f, "x"));
  EXPECT_FALSE(PrepareRoot(f));
}

TEST_F(StoreRootTest, MakesANewOrEmptyDirAStoreAndMarksIt) {
  std::string fresh = tmp_.path() + "/a/b/store";
  ASSERT_TRUE(PrepareRoot(fresh));
  EXPECT_TRUE(PathExists(fresh + "/" + std::string(kMarkerName)));
  EXPECT_EQ(ModeOf(fresh), 0700u);
  std::string empty = tmp_.path() + "/empty";
  ASSERT_EQ(::mkdir(empty.c_str(), 0755), 0);
  ASSERT_TRUE(PrepareRoot(empty));
  EXPECT_EQ(ModeOf(empty), 0700u);
  // Once marked, content is fine.
  ASSERT_TRUE(MakeDirsAbs(empty + "/anything", 0700));
  EXPECT_TRUE(PrepareRoot(empty));
}

TEST_F(StoreRootTest, AdoptsAStoreFromBeforeTheMarkerAndFixesItsMode) {
  std::string old = tmp_.path() + "/old";
  ASSERT_TRUE(MakeDirsAbs(old + "/image/overlay2", 0700));
  ASSERT_TRUE(MakeDirsAbs(old + "/overlay2/l", 0700));
  ASSERT_TRUE(MakeDirsAbs(old + "/tmp", 0700));
  ASSERT_EQ(::chmod(old.c_str(), 0711), 0);
  ASSERT_TRUE(PrepareRoot(old));
  EXPECT_TRUE(PathExists(old + "/" + std::string(kMarkerName)));
  EXPECT_EQ(ModeOf(old), 0700u);
  // But not when anything else lives there.
  std::string mixed = tmp_.path() + "/mixed";
  ASSERT_TRUE(MakeDirsAbs(mixed + "/image", 0700));
  ASSERT_TRUE(MakeDirsAbs(mixed + "/overlay2", 0700));
  ASSERT_TRUE(MakeDirsAbs(mixed + "/home", 0700));
  EXPECT_FALSE(PrepareRoot(mixed));
}

TEST_F(StoreRootTest, RefusesAForeignOrNewerMarker) {
  std::string d = tmp_.path() + "/d";
  ASSERT_TRUE(MakeDirsAbs(d, 0700));
  ASSERT_TRUE(WriteFileAtomic(d + "/" + std::string(kMarkerName), "{\"format\":\"other\"}"));
  EXPECT_FALSE(PrepareRoot(d));
  ASSERT_TRUE(WriteFileAtomic(d + "/" + std::string(kMarkerName),
                              "{\"format\":\"shale-store\",\"version\":99}"));
  auto r = PrepareRoot(d);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("newer"), std::string::npos);
}

TEST(StagingNames, OnlyShalesPrefixesWithSomethingAfterThem) {
  EXPECT_TRUE(IsStagingName("txn-AbC123"));
  EXPECT_TRUE(IsStagingName("save-x"));
  EXPECT_TRUE(IsStagingName("blob-1"));
  EXPECT_FALSE(IsStagingName("txn-"));
  EXPECT_FALSE(IsStagingName(".X11-unix"));
  EXPECT_FALSE(IsStagingName("systemd-private-abc"));
  EXPECT_FALSE(IsStagingName("ssh-XXXXabc"));
  EXPECT_FALSE(IsStagingName("mytxn-1"));
}

}  // namespace
}  // namespace shale::store
