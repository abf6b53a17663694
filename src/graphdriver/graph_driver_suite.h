// Conformance suite for every GraphDriver (containerd's SnapshotterSuite, as gtest typed tests).
//
// A driver joins with a factory type and one line:
//   struct MyFactory { static Result<std::unique_ptr<GraphDriver>> Make(const std::string& root);
//   }; INSTANTIATE_TYPED_TEST_SUITE_P(My, GraphDriverSuite, ::testing::Types<MyFactory>);
// Each test runs as root in its own temp dir under /tmp; TearDown detaches every mount below
// it, so a failed assertion leaves nothing mounted.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "graphdriver/graph_driver.h"
#include "sys/mount.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::graph::testing {

#define SHALE_ASSERT_OK(expr)                                             \
  do {                                                                    \
    auto&& r_ = (expr);                                                   \
    ASSERT_TRUE(r_.has_value()) << #expr << ": " << r_.error().message(); \
  } while (0)

// Detaches every mount whose mount point is below `dir`, deepest first.
inline void DetachAllUnder(const std::string& dir) {
  for (int round = 0; round < 8; round++) {
    auto info = ReadFile("/proc/self/mountinfo");
    if (!info) return;
    std::vector<std::string> points;
    for (const auto& line : Split(*info, '\n')) {
      auto f = Split(line, ' ');
      if (f.size() > 4 && StartsWith(f[4], dir + "/")) points.push_back(f[4]);
    }
    if (points.empty()) return;
    std::sort(points.begin(), points.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& p : points) (void)sys::Unmount(p, /*lazy=*/true);
  }
}

// Every path below `dir` (relative), sorted: a snapshot to compare before and after.
inline std::vector<std::string> TreeOf(const std::string& dir, const std::string& rel = "") {
  std::vector<std::string> out;
  auto names = ListDir(rel.empty() ? dir : dir + "/" + rel);
  if (!names) return out;
  for (const auto& n : *names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    out.push_back(r);
    struct stat st;
    if (lstat((dir + "/" + r).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      auto sub = TreeOf(dir, r);
      out.insert(out.end(), sub.begin(), sub.end());
    }
  }
  return out;
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

template <typename Factory>
class GraphDriverSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mounts)";
    auto t = ScopedTempDir::Make("/tmp", "shale-graph-test-");
    ASSERT_TRUE(t.has_value()) << t.error().message();
    tmp_ = std::move(*t);
    auto d = Factory::Make(tmp_.path() + "/driver");
    ASSERT_TRUE(d.has_value()) << d.error().message();
    driver_ = std::move(*d);
  }
  void TearDown() override {
    if (!tmp_.path().empty()) DetachAllUnder(tmp_.path());
  }

  GraphDriver& d() { return *driver_; }

  void Write(std::string_view id, const std::string& rel, const std::string& content) {
    std::string path = driver_->DiffPath(id) + "/" + rel;
    ASSERT_TRUE(MakeDirsAbs(Dirname(path)).has_value());
    ASSERT_TRUE(WriteFileAtomic(path, content).has_value()) << path;
  }
  std::string Read(const std::string& path) { return ReadFile(path).value_or("<missing>"); }

  // Layers named `prefix`0..n-1, each on the previous and holding file f<i>.
  void BuildStack(const std::string& prefix, int n) {
    std::string parent;
    for (int i = 0; i < n; i++) {
      std::string id = prefix + std::to_string(i);
      SHALE_ASSERT_OK(driver_->Create(id, parent, LayerKind::kImage));
      Write(id, "f" + std::to_string(i), std::to_string(i));
      parent = id;
    }
  }

  ScopedTempDir tmp_;
  std::unique_ptr<GraphDriver> driver_;
};

TYPED_TEST_SUITE_P(GraphDriverSuite);

TYPED_TEST_P(GraphDriverSuite, CreateStackStatRemove) {
  auto& d = this->d();
  SHALE_ASSERT_OK(d.Create("base", "", LayerKind::kImage));
  SHALE_ASSERT_OK(d.Create("mid", "base", LayerKind::kImage));
  SHALE_ASSERT_OK(d.Create("top", "mid", LayerKind::kImage));
  EXPECT_TRUE(d.Exists("base") && d.Exists("mid") && d.Exists("top"));
  EXPECT_FALSE(d.Exists("other"));

  auto info = d.Stat("top");
  ASSERT_TRUE(info.has_value()) << info.error().message();
  EXPECT_EQ(info->id, "top");
  EXPECT_EQ(info->parent, "mid");
  EXPECT_EQ(info->chain, (std::vector<std::string>{"mid", "base"}));
  auto base = d.Stat("base");
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ(base->parent, "");
  EXPECT_TRUE(base->chain.empty());

  auto busy = d.Remove("mid");
  ASSERT_FALSE(busy.has_value()) << "a layer with a child must not be removed";
  EXPECT_EQ(busy.error().code(), Errc::kBusy);
  EXPECT_TRUE(d.Exists("mid"));

  SHALE_ASSERT_OK(d.Remove("top"));
  SHALE_ASSERT_OK(d.Remove("mid"));
  SHALE_ASSERT_OK(d.Remove("base"));
  EXPECT_FALSE(d.Exists("top") || d.Exists("mid") || d.Exists("base"));
  SHALE_ASSERT_OK(d.Remove("base"));  // missing is success
  auto st = d.Stat("base");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), Errc::kNotFound);
}

TYPED_TEST_P(GraphDriverSuite, CreateTwiceIsAlreadyExists) {
  auto& d = this->d();
  SHALE_ASSERT_OK(d.Create("a", "", LayerKind::kImage));
  auto r = d.Create("a", "", LayerKind::kImage);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kAlreadyExists);
}

TYPED_TEST_P(GraphDriverSuite, CreateOnMissingParentLeavesNothing) {
  auto& d = this->d();
  SHALE_ASSERT_OK(d.Create("a", "", LayerKind::kImage));
  auto before = TreeOf(d.Root());
  auto r = d.Create("b", "missing", LayerKind::kImage);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_NE(r.error().message().find("missing"), std::string::npos) << r.error().message();
  EXPECT_FALSE(d.Exists("b"));
  EXPECT_EQ(TreeOf(d.Root()), before);
  auto bad = d.Create("../escape", "", LayerKind::kImage);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(TreeOf(d.Root()), before);
}

TYPED_TEST_P(GraphDriverSuite, ImageViewShowsAllLayersReadOnly) {
  auto& d = this->d();
  this->BuildStack("L", 3);
  this->Write("L0", "shared", "from L0");
  this->Write("L2", "shared", "from L2");
  auto merged = d.Mount("L2");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  for (int i = 0; i < 3; i++)
    EXPECT_EQ(this->Read(*merged + "/f" + std::to_string(i)), std::to_string(i));
  EXPECT_EQ(this->Read(*merged + "/shared"), "from L2");
  EXPECT_FALSE(WriteFileAtomic(*merged + "/new", "x").has_value()) << "image views are read-only";
  SHALE_ASSERT_OK(d.Unmount("L2"));
}

TYPED_TEST_P(GraphDriverSuite, BaseLayerViewIsReadOnly) {
  auto& d = this->d();
  this->BuildStack("B", 1);
  auto merged = d.Mount("B0");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  EXPECT_TRUE(sys::IsMountPoint(*merged));
  EXPECT_EQ(this->Read(*merged + "/f0"), "0");
  EXPECT_FALSE(WriteFileAtomic(*merged + "/new", "x").has_value());
  SHALE_ASSERT_OK(d.Unmount("B0"));
}

TYPED_TEST_P(GraphDriverSuite, WhiteoutInUpperLayerHidesLowerFile) {
  auto& d = this->d();
  SHALE_ASSERT_OK(d.Create("lo", "", LayerKind::kImage));
  this->Write("lo", "etc/gone", "bye");
  this->Write("lo", "etc/kept", "stay");
  SHALE_ASSERT_OK(d.Create("up", "lo", LayerKind::kImage));
  ASSERT_TRUE(MakeDirsAbs(d.DiffPath("up") + "/etc").has_value());
  std::string wh = d.DiffPath("up") + "/etc/gone";
  ASSERT_EQ(mknod(wh.c_str(), S_IFCHR | 0000, makedev(0, 0)), 0) << strerror(errno);
  auto merged = d.Mount("up");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  EXPECT_FALSE(PathExists(*merged + "/etc/gone"));
  EXPECT_EQ(this->Read(*merged + "/etc/kept"), "stay");
  SHALE_ASSERT_OK(d.Unmount("up"));
}

TYPED_TEST_P(GraphDriverSuite, OpaqueDirectoryHidesLowerChildren) {
  auto& d = this->d();
  SHALE_ASSERT_OK(d.Create("lo", "", LayerKind::kImage));
  this->Write("lo", "dir/old1", "1");
  this->Write("lo", "dir/old2", "2");
  SHALE_ASSERT_OK(d.Create("up", "lo", LayerKind::kImage));
  this->Write("up", "dir/new", "n");
  std::string dir = d.DiffPath("up") + "/dir";
  ASSERT_EQ(setxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0), 0) << strerror(errno);
  auto merged = d.Mount("up");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  EXPECT_EQ(ListDir(*merged + "/dir").value_or(std::vector<std::string>{}),
            std::vector<std::string>{"new"});
  SHALE_ASSERT_OK(d.Unmount("up"));
}

TYPED_TEST_P(GraphDriverSuite, ContainerWritesLandInItsDiff) {
  auto& d = this->d();
  this->BuildStack("img", 2);
  SHALE_ASSERT_OK(d.Create("ctr-init", "img1", LayerKind::kInit));
  this->Write("ctr-init", "etc/hostname", "ctr\n");
  SHALE_ASSERT_OK(d.Create("ctr", "ctr-init", LayerKind::kContainer));
  auto merged = d.Mount("ctr");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  EXPECT_EQ(this->Read(*merged + "/etc/hostname"), "ctr\n");
  EXPECT_EQ(this->Read(*merged + "/f0"), "0");
  SHALE_ASSERT_OK(WriteFileAtomic(*merged + "/written", "hello"));
  EXPECT_EQ(this->Read(d.DiffPath("ctr") + "/written"), "hello");
  EXPECT_FALSE(PathExists(d.DiffPath("img1") + "/written"));
  // Deleting a lower file leaves an overlay whiteout (c 0/0) in the container's diff.
  ASSERT_EQ(unlink((*merged + "/f0").c_str()), 0);
  struct stat st;
  ASSERT_EQ(lstat((d.DiffPath("ctr") + "/f0").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(this->Read(d.DiffPath("img0") + "/f0"), "0");
  SHALE_ASSERT_OK(d.Unmount("ctr"));
  EXPECT_EQ(this->Read(d.DiffPath("ctr") + "/written"), "hello");
}

TYPED_TEST_P(GraphDriverSuite, MountIsIdempotentAndUnmountRemovesMerged) {
  auto& d = this->d();
  this->BuildStack("m", 2);
  auto first = d.Mount("m1");
  ASSERT_TRUE(first.has_value()) << first.error().message();
  auto second = d.Mount("m1");
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_EQ(*first, *second);
  auto info = ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(info.has_value());
  int count = 0;
  for (size_t p = 0; (p = info->find(" " + *first + " ", p)) != std::string::npos; p++) count++;
  EXPECT_EQ(count, 1) << "the second Mount must reuse the first";
  SHALE_ASSERT_OK(d.Unmount("m1"));
  EXPECT_FALSE(sys::IsMountPoint(*first));
  EXPECT_FALSE(PathExists(*first));
  SHALE_ASSERT_OK(d.Unmount("m1"));  // nothing mounted: fine
}

TYPED_TEST_P(GraphDriverSuite, RemoveWhileMountedIsBusy) {
  auto& d = this->d();
  this->BuildStack("r", 2);
  auto merged = d.Mount("r1");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  auto r = d.Remove("r1");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kBusy);
  EXPECT_EQ(this->Read(*merged + "/f0"), "0");
  SHALE_ASSERT_OK(d.Unmount("r1"));
  SHALE_ASSERT_OK(d.Remove("r1"));
  EXPECT_FALSE(d.Exists("r1"));
}

// A container's pair (read-write layer on its init layer) goes child first, whatever the
// driver deletes in parallel; the wrong order is refused and leaves both; missing is fine.
TYPED_TEST_P(GraphDriverSuite, RemoveStackChildFirst) {
  auto& d = this->d();
  this->BuildStack("img", 1);
  SHALE_ASSERT_OK(d.Create("c-init", "img0", LayerKind::kInit));
  SHALE_ASSERT_OK(d.Create("c", "c-init", LayerKind::kContainer));
  for (int i = 0; i < 50; ++i) this->Write("c", "d/f" + std::to_string(i), "x");
  this->Write("c-init", "etc/hosts", "");
  auto alone = d.Remove("c-init");  // its read-write layer stands on it
  ASSERT_FALSE(alone.has_value());
  EXPECT_EQ(alone.error().code(), Errc::kBusy);
  auto wrong = d.RemoveStack({"c-init", "c"});
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code(), Errc::kBusy);
  EXPECT_TRUE(d.Exists("c") && d.Exists("c-init"));
  SHALE_ASSERT_OK(d.RemoveStack({"c", "c-init"}));
  EXPECT_FALSE(d.Exists("c") || d.Exists("c-init"));
  EXPECT_TRUE(d.Exists("img0"));
  SHALE_ASSERT_OK(d.RemoveStack({"c", "c-init"}));
  // Nothing renamed away is left behind.
  auto names = ListDir(d.Root());
  ASSERT_TRUE(names.has_value());
  for (const std::string& n : *names) EXPECT_NE(n.rfind(".rm-", 0), 0u) << n;
}

// 150 layers: more than one page of mount(2) options even with Docker's short names.
TYPED_TEST_P(GraphDriverSuite, DeepStackNewMountApi) {
  auto& d = this->d();
  this->BuildStack("s", 150);
  auto merged = d.Mount("s149");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  for (int i = 0; i < 150; i++)
    ASSERT_EQ(this->Read(*merged + "/f" + std::to_string(i)), std::to_string(i)) << i;
  SHALE_ASSERT_OK(d.Unmount("s149"));
  SHALE_ASSERT_OK(d.Create("c", "s149", LayerKind::kContainer));
  auto cm = d.Mount("c");
  ASSERT_TRUE(cm.has_value()) << cm.error().message();
  EXPECT_EQ(this->Read(*cm + "/f0"), "0");
  SHALE_ASSERT_OK(WriteFileAtomic(*cm + "/f0", "changed"));
  EXPECT_EQ(this->Read(d.DiffPath("c") + "/f0"), "changed");
  SHALE_ASSERT_OK(d.Unmount("c"));
}

TYPED_TEST_P(GraphDriverSuite, DeepStackLegacyMount) {
  ScopedEnv legacy("SHALE_OVERLAY_MOUNT", "legacy");
  auto& d = this->d();
  this->BuildStack("s", 150);
  auto merged = d.Mount("s149");
  ASSERT_TRUE(merged.has_value()) << merged.error().message();
  for (int i = 0; i < 150; i++)
    ASSERT_EQ(this->Read(*merged + "/f" + std::to_string(i)), std::to_string(i)) << i;
  SHALE_ASSERT_OK(d.Unmount("s149"));
  // A container on 120 of them: read-write through the short names.
  SHALE_ASSERT_OK(d.Create("c", "s119", LayerKind::kContainer));
  auto cm = d.Mount("c");
  ASSERT_TRUE(cm.has_value()) << cm.error().message();
  EXPECT_EQ(this->Read(*cm + "/f119"), "119");
  SHALE_ASSERT_OK(WriteFileAtomic(*cm + "/new", "n"));
  EXPECT_EQ(this->Read(d.DiffPath("c") + "/new"), "n");
  SHALE_ASSERT_OK(d.Unmount("c"));
}

REGISTER_TYPED_TEST_SUITE_P(GraphDriverSuite, CreateStackStatRemove, CreateTwiceIsAlreadyExists,
                            CreateOnMissingParentLeavesNothing, ImageViewShowsAllLayersReadOnly,
                            BaseLayerViewIsReadOnly, WhiteoutInUpperLayerHidesLowerFile,
                            OpaqueDirectoryHidesLowerChildren, ContainerWritesLandInItsDiff,
                            MountIsIdempotentAndUnmountRemovesMerged, RemoveWhileMountedIsBusy,
                            RemoveStackChildFirst, DeepStackNewMountApi, DeepStackLegacyMount);

}  // namespace shale::graph::testing
