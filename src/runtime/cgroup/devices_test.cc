#include "runtime/cgroup/devices.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cgroup/cgroup_manager.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime::cgroup {
namespace {

using oci::DeviceRule;

// A tiny interpreter for the instructions DeviceFilterProgram emits: checks the program's
// meaning without the kernel. Fails the test on an instruction it does not know.
int RunFilter(const std::vector<bpf_insn>& prog, uint32_t type, uint32_t access, uint32_t major,
              uint32_t minor) {
  bpf_cgroup_dev_ctx ctx = {(access << 16) | type, major, minor};
  uint64_t r[11] = {};
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const bpf_insn& i = prog[pc];
    uint64_t src = BPF_SRC(i.code) == BPF_X ? r[i.src_reg] : static_cast<uint64_t>(i.imm);
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        EXPECT_EQ(i.src_reg, BPF_REG_1);
        r[i.dst_reg] = *reinterpret_cast<const uint32_t*>(
            reinterpret_cast<const char*>(&ctx) + i.off);
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg] & src);
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) >> src;
        break;
      case BPF_ALU | BPF_MOV | BPF_X:
        r[i.dst_reg] = static_cast<uint32_t>(src);
        break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        r[i.dst_reg] = src;
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[i.dst_reg] != src) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (r[i.dst_reg] == src) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT:
        return static_cast<int>(r[0]);
      default:
        ADD_FAILURE() << "unexpected opcode " << int(i.code) << " at " << pc;
        return -1;
    }
  }
  ADD_FAILURE() << "fell off the end of the program";
  return -1;
}

constexpr uint32_t kChr = BPF_DEVCG_DEV_CHAR, kBlk = BPF_DEVCG_DEV_BLOCK;
constexpr uint32_t kM = BPF_DEVCG_ACC_MKNOD, kR = BPF_DEVCG_ACC_READ, kW = BPF_DEVCG_ACC_WRITE;

TEST(DeviceRulesTest, V1Lines) {
  std::vector<std::string> lines;
  for (const DeviceRule& r : oci::DefaultDeviceRules()) lines.push_back(DeviceRuleLine(r));
  ASSERT_GE(lines.size(), 12u);
  EXPECT_EQ(lines[0], "a *:* rwm");
  EXPECT_EQ(lines[1], "c *:* m");
  EXPECT_EQ(lines[2], "b *:* m");
  EXPECT_EQ(lines[3], "c 1:3 rwm");
  EXPECT_NE(std::find(lines.begin(), lines.end(), "c 136:* rwm"), lines.end());
  EXPECT_EQ(DeviceRuleLine(oci::PrivilegedDeviceRules()[0]), "a *:* rwm");
  EXPECT_TRUE(oci::PrivilegedDeviceRules()[0].allow);
}

TEST(DeviceRulesTest, Validate) {
  EXPECT_TRUE(ValidateDeviceRules(oci::DefaultDeviceRules()));
  auto bad = ValidateDeviceRules({{true, "x", 1, 3, "rwm"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("devices[0]: type \"x\""), std::string::npos);
  EXPECT_FALSE(ValidateDeviceRules({{true, "c", 1, 3, "rwx"}}));
  EXPECT_FALSE(ValidateDeviceRules({{true, "c", -1, 3, "r"}}));
}

TEST(DeviceRulesTest, DefaultProgramMeaning) {
  std::vector<bpf_insn> p = DeviceFilterProgram(oci::DefaultDeviceRules());
  // Shape: six loads/shifts of the context, a block per rule, the deny-all block last.
  ASSERT_GT(p.size(), 6u);
  EXPECT_EQ(p[0].code, BPF_LDX | BPF_MEM | BPF_W);
  EXPECT_EQ(p.back().code, BPF_JMP | BPF_EXIT);
  EXPECT_EQ(p[p.size() - 2].code, BPF_ALU64 | BPF_MOV | BPF_K);
  EXPECT_EQ(p[p.size() - 2].imm, 0);  // deny
  // Meaning.
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 1, 3), 1);    // /dev/null
  EXPECT_EQ(RunFilter(p, kChr, kR, 1, 9), 1);         // urandom
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 136, 7), 1);  // pts/7
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 5, 2), 1);    // ptmx
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 10, 200), 1); // tun
  EXPECT_EQ(RunFilter(p, kBlk, kM, 8, 0), 1);         // mknod sda: allowed
  EXPECT_EQ(RunFilter(p, kChr, kM, 1, 1), 1);         // mknod mem: allowed
  EXPECT_EQ(RunFilter(p, kBlk, kR, 8, 0), 0);         // read sda: denied
  EXPECT_EQ(RunFilter(p, kChr, kR, 1, 1), 0);         // /dev/mem: denied
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 10, 229), 0); // fuse: denied
  EXPECT_EQ(RunFilter(p, kChr, kR | kM, 1, 1), 0);    // mknod+read: not covered by "m"
}

TEST(DeviceRulesTest, LastMatchWinsAndPartialAccess) {
  // Allow everything, then take write on 1:3 away.
  std::vector<DeviceRule> rules = {{true, "a", {}, {}, "rwm"}, {false, "c", 1, 3, "w"}};
  auto p = DeviceFilterProgram(rules);
  EXPECT_EQ(RunFilter(p, kChr, kR, 1, 3), 1);
  EXPECT_EQ(RunFilter(p, kChr, kW, 1, 3), 0);
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 1, 3), 0);
  EXPECT_EQ(RunFilter(p, kBlk, kR | kW, 8, 0), 1);
  // Read only on 1:5 over a deny-all.
  rules = {{false, "a", {}, {}, "rwm"}, {true, "c", 1, 5, "r"}};
  p = DeviceFilterProgram(rules);
  EXPECT_EQ(RunFilter(p, kChr, kR, 1, 5), 1);
  EXPECT_EQ(RunFilter(p, kChr, kR | kW, 1, 5), 0);
  EXPECT_EQ(RunFilter(p, kBlk, kR, 1, 5), 0);
  // Privileged: one unconditional allow, nothing else emitted.
  p = DeviceFilterProgram(oci::PrivilegedDeviceRules());
  EXPECT_EQ(p.size(), 8u);
  EXPECT_EQ(RunFilter(p, kBlk, kR | kW | kM, 8, 0), 1);
  // No rule: deny.
  EXPECT_EQ(RunFilter(DeviceFilterProgram({}), kChr, kR, 1, 3), 0);
}

// The v2 path for real: the kernel runs cgroup device programs on the cgroup2 hierarchy
// even when, as here, the devices controller lives in v1 (cgroup2 at /sys/fs/cgroup/unified
// with no controllers enabled). A process in a cgroup with the default program may open
// /dev/null but not a block device it just made.
TEST(DeviceFilterLiveTest, AttachOnCgroup2) {
  std::string root = "/sys/fs/cgroup/unified";
  struct stat st;
  if (stat((root + "/cgroup.procs").c_str(), &st) != 0) {
    auto v = DetectVersion();
    if (!v || *v != Version::kV2) GTEST_SKIP() << "no cgroup2 hierarchy here";
    root = kDefaultRoot;
  }
  std::string path = "shale-test/dev-" + RandomHexId(8);
  auto cg = NewV2(root, path);
  ASSERT_TRUE(cg->Create());
  struct Cleanup {
    CgroupManager* cg;
    ~Cleanup() {
      (void)cg->KillAll();
      (void)cg->Remove();
    }
  } cleanup{cg.get()};
  auto tmp = ScopedTempDir::Make("/tmp", "shale-dev-");
  ASSERT_TRUE(tmp);
  std::string sda = tmp->path() + "/sda", mem = tmp->path() + "/mem", null = tmp->path() + "/null";
  ASSERT_EQ(mknod(sda.c_str(), S_IFBLK | 0600, makedev(8, 0)), 0);
  ASSERT_EQ(mknod(mem.c_str(), S_IFCHR | 0600, makedev(1, 1)), 0);
  ASSERT_EQ(mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);

  oci::LinuxResources res;
  res.devices = oci::DefaultDeviceRules();
  auto applied = cg->Apply(res);
  ASSERT_TRUE(applied) << applied.error().message();
  // Twice: the second program replaces the first rather than stacking.
  applied = cg->Apply(res);
  ASSERT_TRUE(applied) << applied.error().message();

  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) _exit(10);  // wait until moved into the cgroup
    int fd = open(null.c_str(), O_RDWR);
    if (fd < 0) _exit(11);
    close(fd);
    if (open(sda.c_str(), O_RDONLY) >= 0 || errno != EPERM) _exit(12);
    if (open(mem.c_str(), O_RDONLY) >= 0 || errno != EPERM) _exit(13);
    std::string again = sda + "2";  // mknod itself is allowed
    if (mknod(again.c_str(), S_IFBLK | 0600, makedev(8, 0)) != 0) _exit(14);
    _exit(0);
  }
  close(p[0]);
  auto added = cg->AddTask(pid);
  EXPECT_TRUE(added) << added.error().message();
  EXPECT_EQ(write(p[1], "x", 1), 1);
  close(p[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "11: /dev/null refused, 12: block device opened, "
                                       "13: /dev/mem opened, 14: mknod refused";
  // This process (outside the cgroup) is not restricted: it gets past the filter (and may
  // then find no such device, ENXIO, on a kernel without /dev/mem).
  int fd = open(mem.c_str(), O_RDONLY);
  int err = errno;
  if (fd >= 0) close(fd);
  EXPECT_TRUE(fd >= 0 || err != EPERM) << strerror(err);
}

}  // namespace
}  // namespace shale::runtime::cgroup
