#include "runtime/mount_options.h"

#include <gtest/gtest.h>
#include "runtime/linux_mount.h"

namespace shale::runtime {
namespace {

TEST(MountOptionsTest, Table) {
  struct Case {
    std::string type;
    std::vector<std::string> opts;
    unsigned long flags, prop;
    bool bind;
    std::string data;
    bool remount;
  } cases[] = {
      {"proc", {"nosuid", "noexec", "nodev"}, MS_NOSUID | MS_NOEXEC | MS_NODEV, 0, false, "", false},
      {"tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"},
       MS_NOSUID | MS_STRICTATIME, 0, false, "mode=755,size=65536k", false},
      {"devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
       MS_NOSUID | MS_NOEXEC, 0, false, "newinstance,ptmxmode=0666,mode=0620,gid=5", false},
      {"bind", {"rbind", "ro"}, MS_BIND | MS_REC | MS_RDONLY, 0, true, "", true},
      {"none", {"bind", "rprivate"}, MS_BIND, MS_PRIVATE | MS_REC, true, "", false},
      {"bind", {"rw", "rbind"}, MS_BIND | MS_REC, 0, true, "", false},
      {"sysfs", {"ro", "rw"}, 0, 0, false, "", false},
      // idmap/ridmap never reach mount(2) (checked below).
      {"bind", {"rbind", "ridmap", "ro"}, MS_BIND | MS_REC | MS_RDONLY, 0, true, "", true},
      {"none", {"bind", "idmap"}, MS_BIND, 0, true, "", false},
  };
  for (const Case& c : cases) {
    MountOptions m = ParseMountOptions(c.type, c.opts);
    EXPECT_EQ(m.flags, c.flags) << c.type;
    EXPECT_EQ(m.propagation, c.prop) << c.type;
    EXPECT_EQ(m.bind, c.bind) << c.type;
    EXPECT_EQ(m.data, c.data) << c.type;
    EXPECT_EQ(m.NeedsRemount(), c.remount) << c.type;
  }
}

TEST(MountOptionsTest, IdmapAndRidmap) {
  MountOptions none = ParseMountOptions("bind", {"rbind"});
  EXPECT_FALSE(none.idmap);
  EXPECT_FALSE(none.idmap_recursive);
  MountOptions idmap = ParseMountOptions("none", {"bind", "idmap"});
  EXPECT_TRUE(idmap.idmap);
  EXPECT_FALSE(idmap.idmap_recursive);
  MountOptions ridmap = ParseMountOptions("none", {"rbind", "ridmap"});
  EXPECT_TRUE(ridmap.idmap);
  EXPECT_TRUE(ridmap.idmap_recursive);
  EXPECT_TRUE(ridmap.data.empty());
  EXPECT_TRUE(ParseMountOptions("none", {"rbind", "ridmap", "idmap"}).idmap);
  EXPECT_FALSE(ParseMountOptions("none", {"rbind", "ridmap", "idmap"}).idmap_recursive);
}

}  // namespace
}  // namespace shale::runtime
