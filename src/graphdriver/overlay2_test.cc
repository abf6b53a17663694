#include "graphdriver/overlay2.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "graphdriver/graph_driver.h"
#include "graphdriver/graph_driver_suite.h"

namespace shale::graph {

struct Overlay2Factory {
  static Result<std::unique_ptr<GraphDriver>> Make(const std::string& root) {
    return NewOverlay2(root);
  }
};

namespace testing {
INSTANTIATE_TYPED_TEST_SUITE_P(Overlay2, GraphDriverSuite, ::testing::Types<Overlay2Factory>);
}  // namespace testing

namespace {

using testing::GraphDriverSuite;
using testing::TreeOf;

// Overlay2-only: the files on disk are Docker's.
class Overlay2Layout : public GraphDriverSuite<Overlay2Factory> {
 protected:
  std::string At(const std::string& rel) { return d().Root() + "/" + rel; }
  std::string Link(const std::string& id) { return ReadFile(At(id + "/link")).value_or(""); }
};

TEST(Overlay2Names, ShortNamesAreDockerBase32) {
  for (int i = 0; i < 50; i++) {
    std::string s = overlay2::NewShortName();
    ASSERT_EQ(s.size(), overlay2::kShortNameLength);
    EXPECT_EQ(s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), std::string::npos) << s;
  }
  EXPECT_NE(overlay2::NewShortName(), overlay2::NewShortName());
}

TEST(Overlay2Names, LayerIds) {
  EXPECT_TRUE(overlay2::ValidLayerId("3f1c0a"));
  EXPECT_TRUE(overlay2::ValidLayerId("abc-init"));
  for (const char* bad : {"", ".", "..", "l", ".tmp-x", "a/b", "../x"})
    EXPECT_FALSE(overlay2::ValidLayerId(bad)) << bad;
  EXPECT_FALSE(overlay2::ValidLayerId(std::string(256, 'a')));
}

TEST_F(Overlay2Layout, FilesAreDockers) {
  SHALE_ASSERT_OK(d().Create("base", "", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("mid", "base", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("ctr", "mid", LayerKind::kContainer));

  for (const char* id : {"base", "mid", "ctr"}) {
    std::string link = Link(id);
    EXPECT_EQ(link.size(), 26u) << id;
    char target[256] = {};
    ASSERT_GT(readlink(At("l/" + link).c_str(), target, sizeof target - 1), 0) << id;
    EXPECT_EQ(std::string(target), std::string("../") + id + "/diff");
    EXPECT_TRUE(IsDirectory(At(std::string(id) + "/diff")));
  }
  EXPECT_FALSE(PathExists(At("base/lower")));
  EXPECT_FALSE(PathExists(At("base/work")));
  EXPECT_EQ(ReadFile(At("mid/lower")).value_or(""), "l/" + Link("base"));
  EXPECT_EQ(ReadFile(At("ctr/lower")).value_or(""), "l/" + Link("mid") + ":l/" + Link("base"));
  EXPECT_TRUE(IsDirectory(At("mid/work")));
  EXPECT_TRUE(IsDirectory(At("ctr/work")));
  struct stat st;
  ASSERT_EQ(stat(At("ctr/work").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(At("ctr/diff").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  // A parent is "committed" once a child exists; a container layer never is.
  EXPECT_TRUE(PathExists(At("base/committed")));
  EXPECT_TRUE(PathExists(At("mid/committed")));
  EXPECT_FALSE(PathExists(At("ctr/committed")));
  EXPECT_FALSE(PathExists(At("ctr/merged")));
  // Nothing but layer dirs and l/ in the root: no temp dirs left over.
  EXPECT_EQ(ListDir(d().Root()).value_or(std::vector<std::string>{}),
            (std::vector<std::string>{"base", "ctr", "l", "mid"}));
}

TEST_F(Overlay2Layout, FailedCreateLeavesNoDirAndNoLink) {
  SHALE_ASSERT_OK(d().Create("a", "", LayerKind::kImage));
  auto links_before = ListDir(At("l")).value_or(std::vector<std::string>{});
  ASSERT_FALSE(d().Create("b", "nope", LayerKind::kImage).has_value());
  ASSERT_FALSE(d().Create("a", "", LayerKind::kImage).has_value());
  EXPECT_FALSE(PathExists(At("b")));
  EXPECT_EQ(ListDir(At("l")).value_or(std::vector<std::string>{}), links_before);
  EXPECT_EQ(ListDir(d().Root()).value_or(std::vector<std::string>{}),
            (std::vector<std::string>{"a", "l"}));
}

TEST_F(Overlay2Layout, RemoveStagingDeletesOnlyLeftovers) {
  SHALE_ASSERT_OK(d().Create("a", "", LayerKind::kImage));
  // What a Create or Remove killed halfway leaves: temporary dirs with content.
  ASSERT_TRUE(MakeDirsAbs(At(".tmp-b-Xy12Zq/diff/etc")));
  ASSERT_TRUE(WriteFileAtomic(At(".tmp-b-Xy12Zq/link"), "ABC"));
  ASSERT_TRUE(MakeDirsAbs(At(".rm-c-Qw34Er/diff")));
  SHALE_ASSERT_OK(d().RemoveStaging());
  EXPECT_EQ(ListDir(d().Root()).value_or(std::vector<std::string>{}),
            (std::vector<std::string>{"a", "l"}));
  SHALE_ASSERT_OK(d().Mount("a"));
  SHALE_ASSERT_OK(d().Unmount("a"));
}

TEST_F(Overlay2Layout, RemoveDeletesDirAndShortLink) {
  SHALE_ASSERT_OK(d().Create("a", "", LayerKind::kImage));
  std::string link = Link("a");
  SHALE_ASSERT_OK(d().Remove("a"));
  EXPECT_FALSE(PathExists(At("a")));
  EXPECT_FALSE(PathExists(At("l/" + link)));
  EXPECT_EQ(TreeOf(d().Root()), std::vector<std::string>{"l"});
}

TEST_F(Overlay2Layout, LongestIdCreatesAndRemoves) {
  std::string id(255, 'x');
  SHALE_ASSERT_OK(d().Create(id, "", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("child", id, LayerKind::kImage));
  SHALE_ASSERT_OK(d().Remove("child"));
  SHALE_ASSERT_OK(d().Remove(id));
  EXPECT_EQ(TreeOf(d().Root()), std::vector<std::string>{"l"});
}

TEST_F(Overlay2Layout, MetadataPathsAsDockerPrintsThem) {
  SHALE_ASSERT_OK(d().Create("base", "", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("mid", "base", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("ctr", "mid", LayerKind::kContainer));
  const std::string r = d().Root();
  EXPECT_EQ(r[0], '/');
  auto m = d().Metadata("ctr");
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(*m, (std::map<std::string, std::string>{
                    {"LowerDir", r + "/mid/diff:" + r + "/base/diff"},
                    {"MergedDir", r + "/ctr/merged"},
                    {"UpperDir", r + "/ctr/diff"},
                    {"WorkDir", r + "/ctr/work"},
                }));
  auto base = d().Metadata("base");
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ(base->count("LowerDir"), 0u);
  EXPECT_EQ(base->at("UpperDir"), r + "/base/diff");
  EXPECT_FALSE(d().Metadata("missing").has_value());
}

TEST_F(Overlay2Layout, MountSpecForContainerAndImageView) {
  SHALE_ASSERT_OK(d().Create("base", "", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("mid", "base", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("ctr-init", "mid", LayerKind::kInit));
  SHALE_ASSERT_OK(d().Create("ctr", "ctr-init", LayerKind::kContainer));
  const std::string r = d().Root();

  auto c = d().MountSpecFor("ctr");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->lowers,
            (std::vector<std::string>{r + "/ctr-init/diff", r + "/mid/diff", r + "/base/diff"}));
  EXPECT_EQ(c->short_lowers, (std::vector<std::string>{"l/" + Link("ctr-init"), "l/" + Link("mid"),
                                                       "l/" + Link("base")}));
  EXPECT_EQ(c->short_base, r);
  EXPECT_EQ(c->upper, r + "/ctr/diff");
  EXPECT_EQ(c->work, r + "/ctr/work");
  bool has_index = PathExists("/sys/module/overlay/parameters/index");
  EXPECT_EQ(std::count(c->extra_options.begin(), c->extra_options.end(), "index=off"),
            has_index ? 1 : 0);

  auto v = d().MountSpecFor("mid");  // image view: own diff first, read-only
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->lowers, (std::vector<std::string>{r + "/mid/diff", r + "/base/diff"}));
  EXPECT_EQ(v->short_lowers, (std::vector<std::string>{"l/" + Link("mid"), "l/" + Link("base")}));
  EXPECT_TRUE(v->upper.empty());
  EXPECT_TRUE(v->work.empty());

  auto init = d().MountSpecFor("ctr-init");  // init layers are read-only once made
  ASSERT_TRUE(init.has_value());
  EXPECT_TRUE(init->upper.empty());
}

TEST_F(Overlay2Layout, ContainerWithoutParentBindsItsDiffWritable) {
  SHALE_ASSERT_OK(d().Create("scratch", "", LayerKind::kContainer));
  auto merged = d().Mount("scratch");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  SHALE_ASSERT_OK(WriteFileAtomic(*merged + "/x", "1"));
  EXPECT_EQ(ReadFile(d().DiffPath("scratch") + "/x").value_or(""), "1");
  SHALE_ASSERT_OK(d().Unmount("scratch"));
}

// run --rm: the upper dir is mounted "volatile"; the work dir it leaves behind must not stop
// the layer from being mounted again (overlayfs refuses work/incompat/volatile).
TEST_F(Overlay2Layout, VolatileMountWritesThroughAndRemountWorks) {
  SHALE_ASSERT_OK(d().Create("base", "", LayerKind::kImage));
  SHALE_ASSERT_OK(WriteFileAtomic(d().DiffPath("base") + "/a", "base"));
  SHALE_ASSERT_OK(d().Create("ctr", "base", LayerKind::kContainer));
  MountOptions mo;
  mo.volatile_upper = true;
  auto merged = d().Mount("ctr", mo);
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  std::string opts = ReadFile("/proc/self/mountinfo").value_or("");
  size_t at = opts.find(*merged);
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(opts.substr(at, opts.find('\n', at) - at).find("volatile"), std::string::npos);
  EXPECT_EQ(ReadFile(*merged + "/a").value_or(""), "base");
  SHALE_ASSERT_OK(WriteFileAtomic(*merged + "/b", "ctr"));
  SHALE_ASSERT_OK(d().Unmount("ctr"));
  EXPECT_EQ(ReadFile(d().DiffPath("ctr") + "/b").value_or(""), "ctr");

  auto again = d().Mount("ctr");  // not volatile this time
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ(ReadFile(*again + "/b").value_or(""), "ctr");
  SHALE_ASSERT_OK(d().Unmount("ctr"));
  SHALE_ASSERT_OK(d().Remove("ctr"));
  SHALE_ASSERT_OK(d().Remove("base"));
}

TEST_F(Overlay2Layout, CorruptShortLinkIsReported) {
  SHALE_ASSERT_OK(d().Create("base", "", LayerKind::kImage));
  SHALE_ASSERT_OK(d().Create("top", "base", LayerKind::kImage));
  ASSERT_EQ(unlink(At("l/" + Link("base")).c_str()), 0);
  auto r = d().Mount("top");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kCorrupt);
  EXPECT_NE(r.error().message().find("top"), std::string::npos) << r.error().message();
  EXPECT_FALSE(PathExists(At("top/merged")));
}

}  // namespace
}  // namespace shale::graph
