// Idmapped mounts: the plan (pure) and, as root, the detached trees themselves, read and
// written through their fds (nothing is attached, so nothing is left mounted).
#include "runtime/idmap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "runtime/init.h"
#include "runtime/linux_mount.h"
#include "util/fs.h"

namespace shale::runtime {
namespace {

oci::RuntimeSpec BaseSpec() {
  oci::RuntimeSpec s;
  s.process.args = {"true"};
  s.root.path = "/";
  s.linux.namespaces = {{"mount", ""}};
  return s;
}

oci::Mount Bind(std::vector<std::string> options) {
  return {"/data", "bind", "/", std::move(options)};
}

TEST(PlanMountIdmapTest, Table) {
  const std::vector<oci::IdMapping> m1000 = {{1000, 0, 2}};
  const std::vector<oci::IdMapping> userns = {{0, 100000, 65536}};
  struct Case {
    const char* name;
    std::function<void(oci::RuntimeSpec&, oci::Mount&)> edit;
    std::optional<Errc> error;
    const char* message;  // in the error, or nullptr
    bool idmapped;
    bool recursive;
    std::vector<oci::IdMapping> uid;
    std::string userns_path;
  };
  std::vector<Case> cases = {
      {"plain bind", [](auto&, auto&) {}, std::nullopt, nullptr, false, false, {}, ""},
      {"mappings without an option mean idmap",
       [&](auto&, oci::Mount& m) {
         m.uid_mappings = m1000;
         m.gid_mappings = m1000;
       },
       std::nullopt, nullptr, true, false, m1000, ""},
      {"ridmap with mappings",
       [&](auto&, oci::Mount& m) {
         m.options = {"rbind", "ridmap"};
         m.uid_mappings = m1000;
         m.gid_mappings = m1000;
       },
       std::nullopt, nullptr, true, true, m1000, ""},
      {"idmap takes the new user namespace's mapping",
       [&](oci::RuntimeSpec& s, oci::Mount& m) {
         m.options = {"bind", "idmap"};
         s.linux.namespaces.push_back({"user", ""});
         s.linux.uid_mappings = userns;
         s.linux.gid_mappings = userns;
       },
       std::nullopt, nullptr, true, false, userns, ""},
      {"idmap takes a joined user namespace",
       [&](oci::RuntimeSpec& s, oci::Mount& m) {
         m.options = {"rbind", "ridmap"};
         s.linux.namespaces.push_back({"user", "/proc/42/ns/user"});
       },
       std::nullopt, nullptr, true, true, {}, "/proc/42/ns/user"},
      {"idmap without mappings or user namespace",
       [](auto&, oci::Mount& m) { m.options = {"bind", "idmap"}; }, Errc::kInvalidArgument,
       "no user namespace", false, false, {}, ""},
      {"not a bind",
       [&](auto&, oci::Mount& m) {
         m = {"/data", "tmpfs", "tmpfs", {"idmap"}, m1000, m1000};
       },
       Errc::kInvalidArgument, "bind mounts only", false, false, {}, ""},
      {"crun's idmap=uids= form",
       [](auto&, oci::Mount& m) { m.options = {"bind", "idmap=uids=0-1-10;gids=0-1-10"}; },
       Errc::kInvalidArgument, "uidMappings and gidMappings", false, false, {}, ""},
  };
  for (const Case& c : cases) {
    oci::RuntimeSpec s = BaseSpec();
    oci::Mount m = Bind({"bind"});
    c.edit(s, m);
    auto r = PlanMountIdmap(m, ParseMountOptions(m.type, m.options), s, /*rootless=*/false);
    if (c.error) {
      ASSERT_FALSE(r) << c.name;
      EXPECT_EQ(r.error().code(), *c.error) << c.name;
      EXPECT_NE(r.error().message().find(c.message), std::string::npos)
          << c.name << ": " << r.error().message();
      EXPECT_NE(r.error().message().find("/data"), std::string::npos) << r.error().message();
      continue;
    }
    ASSERT_TRUE(r) << c.name << ": " << r.error().message();
    ASSERT_EQ(r->has_value(), c.idmapped) << c.name;
    if (!c.idmapped) continue;
    EXPECT_EQ((*r)->recursive, c.recursive) << c.name;
    EXPECT_EQ((*r)->uid, c.uid) << c.name;
    EXPECT_EQ((*r)->gid, c.uid) << c.name;  // every case maps gids as uids
    EXPECT_EQ((*r)->userns_path, c.userns_path) << c.name;
  }
  // Rootless: refused as runc refuses it.
  oci::Mount m = Bind({"bind"});
  m.uid_mappings = m.gid_mappings = m1000;
  auto r = PlanMountIdmap(m, ParseMountOptions(m.type, m.options), BaseSpec(), true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kPermission);
}

// PlanInit carries the plan into the PlannedMount (and refuses through it).
TEST(PlanMountIdmapTest, PlanInitCarriesIt) {
  oci::RuntimeSpec s = BaseSpec();
  oci::Mount m = Bind({"rbind", "ridmap", "ro"});
  m.uid_mappings = m.gid_mappings = {{1000, 0, 2}};
  s.mounts = {m, Bind({"bind"})};
  auto c = PlanInit(s, RunOptions{}, false);
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->mounts.size(), 2u);
  ASSERT_TRUE(c->mounts[0].idmap);
  EXPECT_TRUE(c->mounts[0].idmap->recursive);
  EXPECT_EQ(c->mounts[0].tree_fd, -1);
  EXPECT_FALSE(c->mounts[1].idmap);
  s.mounts[0].options = {"idmap"};
  s.mounts[0].type = "tmpfs";
  auto bad = PlanInit(s, RunOptions{}, false);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
}

TEST(IdmapTest, FormatIdMap) {
  EXPECT_EQ(FormatIdMap({{0, 100000, 65536}, {65536, 1000, 1}}),
            "0 100000 65536\n65536 1000 1\n");
}

class IdmappedTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "shale-idmap-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    src_ = tmp_.path() + "/src";
    ASSERT_EQ(mkdir(src_.c_str(), 0755), 0);
    ASSERT_EQ(chown(src_.c_str(), 1000, 1000), 0);
    for (auto [name, id] : {std::pair{"a", 1000}, std::pair{"b", 1001}, std::pair{"r", 0}}) {
      std::string p = src_ + "/" + name;
      ASSERT_TRUE(WriteFileAtomic(p, "x", 0644));
      ASSERT_EQ(chown(p.c_str(), id, id), 0);
    }
  }
  void TearDown() override {
    for (const std::string& m : mounted_) umount2(m.c_str(), MNT_DETACH);
  }

  PlannedMount Planned(std::vector<oci::IdMapping> maps, std::vector<std::string> opts) {
    PlannedMount pm;
    pm.destination = "/data";
    pm.source = src_;
    pm.options = ParseMountOptions("bind", opts);
    pm.idmap = MountIdmap{maps, maps, "", pm.options.idmap_recursive};
    return pm;
  }

  ScopedTempDir tmp_;
  std::string src_;
  std::vector<std::string> mounted_;
};

std::string Owner(int dir, const char* name) {
  struct stat st;
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return strerror(errno);
  return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}

// containerID 1000 hostID 0 size 2: the disk's 1000 and 1001 show as 0 and 1, and what root
// creates through the mount lands as 1000 on disk. One user namespace serves both mounts.
TEST_F(IdmappedTreeTest, ShowsAndWritesThroughTheMapping) {
  std::vector<PlannedMount> mounts = {Planned({{1000, 0, 2}}, {"bind"}),
                                      Planned({{1000, 0, 2}}, {"bind", "ro"})};
  auto trees = OpenIdmappedTrees(&mounts);
  ASSERT_TRUE(trees) << trees.error().message();
  ASSERT_EQ(trees->size(), 2u);
  int tree = mounts[0].tree_fd;
  ASSERT_EQ(tree, (*trees)[0].get());
  EXPECT_TRUE(fcntl(tree, F_GETFD) & FD_CLOEXEC);
  EXPECT_EQ(Owner(tree, "a"), "0:0");
  EXPECT_EQ(Owner(tree, "b"), "1:1");
  EXPECT_EQ(Owner(tree, "r"), "65534:65534");  // disk 0 is outside the mapping
  UniqueFd made(openat(tree, "new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  ASSERT_TRUE(made) << strerror(errno);
  struct stat st;
  ASSERT_EQ(stat((src_ + "/new").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1000u);
  EXPECT_EQ(Owner(mounts[1].tree_fd, "a"), "0:0");
}

// The mapping's direction (runc, crun, the kernel): disk containerID shows as hostID.
TEST_F(IdmappedTreeTest, ContainerIdIsTheDiskSide) {
  std::vector<PlannedMount> mounts = {Planned({{0, 1000, 2}}, {"bind"})};
  auto trees = OpenIdmappedTrees(&mounts);
  ASSERT_TRUE(trees) << trees.error().message();
  EXPECT_EQ(Owner(mounts[0].tree_fd, "r"), "1000:1000");
  EXPECT_EQ(Owner(mounts[0].tree_fd, "a"), "65534:65534");
}

// A joined container user namespace (linux.namespaces path): its mapping is the mount's.
TEST_F(IdmappedTreeTest, TakesAJoinedUserNamespaceByPath) {
  auto ns = NewUserNamespace({{1000, 0, 2}}, {{1000, 0, 2}});
  ASSERT_TRUE(ns) << ns.error().message();
  PlannedMount pm = Planned({}, {"bind"});
  pm.idmap->userns_path = "/proc/self/fd/" + std::to_string(ns->get());
  std::vector<PlannedMount> mounts = {pm};
  auto trees = OpenIdmappedTrees(&mounts);
  ASSERT_TRUE(trees) << trees.error().message();
  EXPECT_EQ(Owner(mounts[0].tree_fd, "b"), "1:1");
}

// ridmap maps the mounts below the top one too; idmap only the top one.
TEST_F(IdmappedTreeTest, RidmapReachesNestedMounts) {
  std::string sub = src_ + "/sub";
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  ASSERT_EQ(mount("tmpfs", sub.c_str(), "tmpfs", 0, "mode=755"), 0) << strerror(errno);
  mounted_.push_back(sub);
  ASSERT_TRUE(WriteFileAtomic(sub + "/f", "x", 0644));
  ASSERT_EQ(chown((sub + "/f").c_str(), 1001, 1001), 0);
  std::vector<PlannedMount> mounts = {Planned({{1000, 0, 2}}, {"rbind", "ridmap"}),
                                      Planned({{1000, 0, 2}}, {"rbind", "idmap"})};
  auto trees = OpenIdmappedTrees(&mounts);
  ASSERT_TRUE(trees) << trees.error().message();
  EXPECT_EQ(Owner(mounts[0].tree_fd, "sub/f"), "1:1");
  EXPECT_EQ(Owner(mounts[1].tree_fd, "sub/f"), "1001:1001");
  EXPECT_EQ(Owner(mounts[1].tree_fd, "a"), "0:0");
}

// A file system without idmap support (ramfs): the error names the mount and the cause.
TEST_F(IdmappedTreeTest, RefusalNamesTheDestinationAndTheFileSystem) {
  ASSERT_EQ(mount("ramfs", src_.c_str(), "ramfs", 0, nullptr), 0) << strerror(errno);
  mounted_.push_back(src_);
  std::vector<PlannedMount> mounts = {Planned({{1000, 0, 2}}, {"bind"})};
  auto trees = OpenIdmappedTrees(&mounts);
  ASSERT_FALSE(trees);
  const std::string& m = trees.error().message();
  EXPECT_NE(m.find("mount /data"), std::string::npos) << m;
  EXPECT_NE(m.find("MOUNT_ATTR_IDMAP"), std::string::npos) << m;
  EXPECT_NE(m.find("ramfs"), std::string::npos) << m;
  EXPECT_EQ(trees.error().sys_errno(), 0);  // rebuilt with the hint; the code stays
  EXPECT_EQ(trees.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(mounts[0].tree_fd, -1);
}

}  // namespace
}  // namespace shale::runtime
