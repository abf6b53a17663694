#include "runtime/cgroup/cgroup_manager.h"

#include <algorithm>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "util/fd.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime::cgroup {
namespace {

TEST(CgroupValuesTest, SharesToWeight) {
  EXPECT_EQ(SharesToWeight(2), 1u);
  EXPECT_EQ(SharesToWeight(262144), 10000u);
  EXPECT_EQ(SharesToWeight(1024), 39u);
  EXPECT_EQ(SharesToWeight(512), 20u);
  EXPECT_EQ(SharesToWeight(0), 0u);
}

TEST(CgroupValuesTest, CpusToQuota) {
  CpuQuota q = CpusToQuota(1.5);
  EXPECT_EQ(q.quota, 150000);
  EXPECT_EQ(q.period, 100000u);
  EXPECT_EQ(CpusToQuota(0.01).quota, 1000);
  EXPECT_EQ(CpuMaxValue(150000, 100000), "150000 100000");
  EXPECT_EQ(CpuMaxValue(std::nullopt, std::nullopt), "max 100000");
  EXPECT_EQ(CpuMaxValue(-1, 50000), "max 50000");
}

TEST(CgroupValuesTest, SwapMax) {
  EXPECT_EQ(SwapMaxValue(100, std::nullopt), "0");
  EXPECT_EQ(SwapMaxValue(100, -1), "max");
  EXPECT_EQ(SwapMaxValue(100, 300), "200");
  EXPECT_EQ(SwapMaxValue(100, 100), "0");
}

TEST(CgroupValuesTest, KeyedValue) {
  EXPECT_EQ(KeyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), 3);
  EXPECT_EQ(KeyedValue("low 0\noom 1\n", "oom_kill"), std::nullopt);
}

TEST(CgroupValuesTest, BadPaths) {
  EXPECT_EQ(NewCgroupManager("").error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(NewCgroupManager("a/../b").error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(NewCgroupManager("/").error().code(), Errc::kInvalidArgument);
}

TEST(CgroupDetectTest, ThisMachine) {
  auto v = DetectVersion();
  ASSERT_TRUE(v) << v.error().message();
  // This machine: cgroup v1 controllers on a tmpfs, cgroup2 only at /sys/fs/cgroup/unified.
  if (PathExists("/sys/fs/cgroup/cgroup.controllers")) {
    EXPECT_EQ(*v, Version::kV2);
  } else {
    EXPECT_EQ(*v, Version::kV1);
    auto u = DetectVersion("/sys/fs/cgroup/unified");
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, Version::kV2);
  }
}

oci::LinuxResources BlockIoSample() {
  oci::LinuxResources r;
  r.blkio_weight = 500;
  r.blkio_weight_device = {{8, 0, 400, std::nullopt}};
  r.blkio_throttle_read_bps = {{8, 0, 102400}};
  r.blkio_throttle_write_iops = {{8, 16, 50}};
  return r;
}

TEST(CgroupValuesTest, BlkioV1Writes) {
  oci::LinuxResources r = BlockIoSample();
  r.blkio_leaf_weight = 300;
  r.blkio_weight_device[0].leaf_weight = 200;
  std::vector<CgroupWrite> want = {
      {"linux.resources.blockIO.weight", "blkio.weight", "500"},
      {"linux.resources.blockIO.leafWeight", "blkio.leaf_weight", "300"},
      {"linux.resources.blockIO.weightDevice", "blkio.weight_device", "8:0 400"},
      {"linux.resources.blockIO.weightDevice", "blkio.leaf_weight_device", "8:0 200"},
      {"linux.resources.blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device",
       "8:0 102400"},
      {"linux.resources.blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device",
       "8:16 50"},
  };
  EXPECT_EQ(BlkioV1Writes(r, false), want);
  std::vector<CgroupWrite> bfq = BlkioV1Writes(r, true);
  ASSERT_EQ(bfq.size(), want.size());
  EXPECT_EQ(bfq[0].file, "blkio.bfq.weight");
  EXPECT_EQ(bfq[2].file, "blkio.bfq.weight_device");
  EXPECT_TRUE(BlkioV1Writes(oci::LinuxResources{}, false).empty());
}

TEST(CgroupValuesTest, IoV2Writes) {
  EXPECT_EQ(BlkioWeightToIoWeight(10), 1u);
  EXPECT_EQ(BlkioWeightToIoWeight(1000), 10000u);
  EXPECT_EQ(BlkioWeightToIoWeight(500), 4950u);
  EXPECT_EQ(BlkioWeightToIoWeight(0), 0u);
  auto w = IoV2Writes(BlockIoSample(), false);
  ASSERT_TRUE(w) << w.error().message();
  std::vector<CgroupWrite> want = {
      {"linux.resources.blockIO.weight", "io.weight", "4950"},
      {"linux.resources.blockIO.weightDevice", "io.weight", "8:0 3940"},
      {"linux.resources.blockIO.throttleReadBpsDevice", "io.max", "8:0 rbps=102400"},
      {"linux.resources.blockIO.throttleWriteIOPSDevice", "io.max", "8:16 wiops=50"},
  };
  EXPECT_EQ(*w, want);
  auto bfq = IoV2Writes(BlockIoSample(), true);
  ASSERT_TRUE(bfq);
  EXPECT_EQ((*bfq)[0], (CgroupWrite{"linux.resources.blockIO.weight", "io.bfq.weight", "500"}));
  oci::LinuxResources leaf = BlockIoSample();
  leaf.blkio_weight_device[0].leaf_weight = 100;
  auto refused = IoV2Writes(leaf, false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::kUnsupported);
  EXPECT_NE(refused.error().message().find("leafWeight"), std::string::npos);
}

TEST(CgroupValuesTest, HugetlbAndNetworkWrites) {
  oci::LinuxResources r;
  r.hugepage_limits = {{"2MB", 1 << 30}, {"1GB", 0}};
  auto v1 = HugetlbWrites(r, false);
  ASSERT_TRUE(v1) << v1.error().message();
  std::vector<CgroupWrite> want = {
      {"linux.resources.hugepageLimits", "hugetlb.2MB.limit_in_bytes", "1073741824"},
      {"linux.resources.hugepageLimits", "hugetlb.1GB.limit_in_bytes", "0"}};
  EXPECT_EQ(*v1, want);
  auto v2 = HugetlbWrites(r, true);
  ASSERT_TRUE(v2);
  EXPECT_EQ((*v2)[0].file, "hugetlb.2MB.max");
  for (const char* bad : {"2M", "MB", "../../x", "2MB/", "2mb", "", "2TB"}) {
    oci::LinuxResources b;
    b.hugepage_limits = {{bad, 1}};
    auto e = HugetlbWrites(b, false);
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code(), Errc::kInvalidArgument) << bad;
  }
  oci::LinuxResources n;
  n.network_class_id = 0x100001;
  n.network_priorities = {{"lo", 10}, {"eth0", 3}};
  std::vector<CgroupWrite> net = {
      {"linux.resources.network.classID", "net_cls.classid", "1048577"},
      {"linux.resources.network.priorities", "net_prio.ifpriomap", "lo 10"},
      {"linux.resources.network.priorities", "net_prio.ifpriomap", "eth0 3"}};
  EXPECT_EQ(NetworkV1Writes(n), net);
}

TEST(CgroupValuesTest, RdmaAndUnifiedWrites) {
  oci::LinuxResources r;
  r.rdma["mlx5_1"] = {3, std::nullopt};
  r.rdma["mlx4_0"] = {std::nullopt, 1000};
  std::vector<CgroupWrite> rdma = {
      {"linux.resources.rdma.mlx4_0", "rdma.max", "mlx4_0 hca_handle=max hca_object=1000"},
      {"linux.resources.rdma.mlx5_1", "rdma.max", "mlx5_1 hca_handle=3 hca_object=max"}};
  EXPECT_EQ(*RdmaWrites(r), rdma);
  r.rdma.clear();
  r.rdma["bad name"] = {};
  EXPECT_EQ(RdmaWrites(r).error().code(), Errc::kInvalidArgument);

  oci::LinuxResources u;
  u.unified = {{"memory.high", "1G"}, {"cgroup.max.descendants", "5"}};
  std::vector<CgroupWrite> uw = {
      {"linux.resources.unified[\"cgroup.max.descendants\"]", "cgroup.max.descendants", "5"},
      {"linux.resources.unified[\"memory.high\"]", "memory.high", "1G"}};
  EXPECT_EQ(*UnifiedWrites(u), uw);
  for (const char* bad : {"../memory.max", "memory", ".hidden", "memory.", "a/b.c",
                          "cgroup.procs", "cgroup.threads", "cgroup.kill"}) {
    oci::LinuxResources b;
    b.unified = {{bad, "1"}};
    auto e = UnifiedWrites(b);
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code(), Errc::kInvalidArgument) << bad;
    EXPECT_NE(e.error().message().find(bad), std::string::npos) << e.error().message();
  }
}

TEST(CgroupValuesTest, CheckBeforeUpdateRefusesALimitBelowTheUsage) {
  char tmpl[] = "/tmp/shale-cgusage-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string usage = std::string(tmpl) + "/memory.current";
  ASSERT_TRUE(WriteFileAtomic(usage, "1048576\n", 0644));
  oci::LinuxResources r;
  r.memory_limit = 4096;
  EXPECT_TRUE(CheckMemoryLimitAboveUsage(r, usage));  // no check asked
  r.memory_check_before_update = true;
  auto below = CheckMemoryLimitAboveUsage(r, usage);
  ASSERT_FALSE(below);
  EXPECT_NE(below.error().message().find("checkBeforeUpdate"), std::string::npos);
  EXPECT_NE(below.error().message().find("1048576"), std::string::npos);
  r.memory_limit = 2 << 20;
  EXPECT_TRUE(CheckMemoryLimitAboveUsage(r, usage));
  EXPECT_TRUE(CheckMemoryLimitAboveUsage(r, std::string(tmpl) + "/none"));  // not made yet
  ::unlink(usage.c_str());
  ::rmdir(tmpl);
}

TEST(CgroupValuesTest, ApplyWritesNamesTheFieldOfAMissingFile) {
  char tmpl[] = "/tmp/shale-cgwrites-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(WriteFileAtomic(dir + "/blkio.weight", "", 0644));
  auto ok = ApplyWrites(dir, {{"linux.resources.blockIO.weight", "blkio.weight", "500"}});
  EXPECT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(*ReadFile(dir + "/blkio.weight"), "500");
  auto missing = ApplyWrites(dir, {{"linux.resources.blockIO.leafWeight", "blkio.leaf_weight", "3"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kUnsupported);
  EXPECT_NE(missing.error().message().find("linux.resources.blockIO.leafWeight"),
            std::string::npos);
  EXPECT_NE(missing.error().message().find(dir + "/blkio.leaf_weight"), std::string::npos);
  ::unlink((dir + "/blkio.weight").c_str());
  ::rmdir(dir.c_str());
}

// The whole disk of this machine (one with a device behind it, not a loop or zram device),
// as "major:minor", or "" if there is none.
std::string SomeDisk() {
  auto names = ListDir("/sys/block");
  if (!names) return "";
  for (const std::string& name : *names)
    if (PathExists("/sys/block/" + name + "/device"))
      if (auto dev = ReadFile("/sys/block/" + name + "/dev")) return std::string(Trim(*dev));
  return "";
}

// A child that sleeps until killed.
pid_t SpawnSleeper() {
  pid_t p = fork();
  if (p == 0) {
    for (;;) pause();
  }
  return p;
}

class CgroupLiveTest : public ::testing::TestWithParam<bool /*v2 on unified*/> {
 protected:
  void SetUp() override {
    path_ = "shale-test/" + RandomHexId(12);
    if (GetParam()) {
      if (!PathExists("/sys/fs/cgroup/unified/cgroup.procs") &&
          !PathExists("/sys/fs/cgroup/cgroup.controllers"))
        GTEST_SKIP() << "no cgroup2 mount";
      std::string root = PathExists("/sys/fs/cgroup/cgroup.controllers")
                             ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
      v2_root_ = root;
      v2_enabled_before_ = std::string(Trim(ReadFile(root + "/cgroup.subtree_control").value_or("")));
      mgr_ = NewV2(root, path_);
    } else {
      auto m = NewCgroupManager(path_);
      ASSERT_TRUE(m) << m.error().message();
      mgr_ = std::move(*m);
    }
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (mgr_) {
      (void)mgr_->KillAll();
      (void)mgr_->Remove();
    }
    if (!v2_root_.empty()) {
      // Create enabled controllers in the ancestors' subtree_control: undo that at the root,
      // where it outlives the test (on a hybrid host, a controller enabled in the cgroup2
      // tree cannot be mounted as v1, and crun refuses to run).
      ::rmdir((v2_root_ + "/shale-test").c_str());
      std::string now(Trim(ReadFile(v2_root_ + "/cgroup.subtree_control").value_or("")));
      std::vector<std::string> before = Split(v2_enabled_before_, ' ');
      for (const std::string& c : Split(now, ' '))
        if (!c.empty() && std::find(before.begin(), before.end(), c) == before.end())
          (void)WriteCgroupFile(v2_root_ + "/cgroup.subtree_control", "-" + c);
    }
  }
  std::string v2_root_, v2_enabled_before_;
  std::string path_;
  std::unique_ptr<CgroupManager> mgr_;
  pid_t pid_ = -1;
};

TEST_P(CgroupLiveTest, CreateApplyJoinFreezeRemove) {
  ASSERT_TRUE(mgr_->Create()) << mgr_->Create().error().message();
  oci::LinuxResources r;
  if (mgr_->version() == Version::kV1 || PathExists(mgr_->Dirs()[0] + "/pids.max")) {
    r.pids_limit = 50;
    r.memory_limit = 64 << 20;
    r.cpu_quota = 150000;
    r.cpu_period = 100000;
    r.cpu_shares = 512;
  }
  auto ap = mgr_->Apply(r);
  ASSERT_TRUE(ap) << ap.error().message();
  if (mgr_->version() == Version::kV1) {
    EXPECT_EQ(Trim(*ReadFile("/sys/fs/cgroup/pids/" + path_ + "/pids.max")), "50");
    EXPECT_EQ(Trim(*ReadFile("/sys/fs/cgroup/memory/" + path_ + "/memory.limit_in_bytes")),
              std::to_string(64 << 20));
    EXPECT_EQ(Trim(*ReadFile("/sys/fs/cgroup/cpu/" + path_ + "/cpu.cfs_quota_us")), "150000");
  }
  pid_ = SpawnSleeper();
  ASSERT_GT(pid_, 0);
  auto add = mgr_->AddTask(pid_);
  ASSERT_TRUE(add) << add.error().message();
  auto pids = mgr_->Pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{pid_});
  auto fr = mgr_->Freeze(true);
  ASSERT_TRUE(fr) << fr.error().message();
  ASSERT_TRUE(mgr_->Freeze(false));
  EXPECT_FALSE(*mgr_->OomKilled());
  // Remove refuses while a task remains.
  EXPECT_EQ(mgr_->Remove().error().code(), Errc::kBusy);
  ASSERT_TRUE(mgr_->KillAll());
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  auto rm = mgr_->Remove();
  ASSERT_TRUE(rm) << rm.error().message();
  for (const auto& d : mgr_->Dirs()) EXPECT_FALSE(PathExists(d)) << d;
}

// A throttle lands in the kernel's file (v1 blkio.throttle.*, v2 io.max) where the kernel has
// the controller; network is refused on v2 by name.
TEST_P(CgroupLiveTest, BlockIoThrottleLandsNetworkRefusedOnV2) {
  std::string disk = SomeDisk();
  if (disk.empty()) GTEST_SKIP() << "no disk under /sys/block";
  ASSERT_TRUE(mgr_->Create());
  oci::LinuxResources r;
  int64_t major = 0, minor = 0;
  size_t colon = disk.find(':');
  ASSERT_NE(colon, std::string::npos) << disk;
  ASSERT_EQ(std::from_chars(disk.data(), disk.data() + colon, major).ec, std::errc()) << disk;
  ASSERT_EQ(std::from_chars(disk.data() + colon + 1, disk.data() + disk.size(), minor).ec,
            std::errc()) << disk;
  r.blkio_throttle_read_bps = {{major, minor, 1048576}};
  auto ap = mgr_->Apply(r);
  std::string file = mgr_->version() == Version::kV1
                         ? "/sys/fs/cgroup/blkio/" + path_ + "/blkio.throttle.read_bps_device"
                         : mgr_->Dirs()[0] + "/io.max";
  if (!PathExists(file)) {
    // No blkio/io controller here: refused, naming the field.
    ASSERT_FALSE(ap);
    EXPECT_NE(ap.error().message().find("throttleReadBpsDevice"), std::string::npos)
        << ap.error().message();
  } else {
    ASSERT_TRUE(ap) << ap.error().message();
    EXPECT_NE(ReadFile(file)->find(disk + " " + std::string(mgr_->version() == Version::kV1
                                                                ? "1048576" : "rbps=1048576")),
              std::string::npos) << *ReadFile(file);
  }
  if (mgr_->version() == Version::kV2) {
    oci::LinuxResources n;
    n.network_class_id = 1;
    auto refused = mgr_->Apply(n);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("linux.resources.network"), std::string::npos);
  }
}

// unified keys land as files of the cgroup2 hierarchy (v2, or the hybrid one on a v1 host);
// rdma is refused naming the field where no rdma controller is mounted (this machine).
TEST_P(CgroupLiveTest, UnifiedLandsRdmaRefusedWithoutController) {
  ASSERT_TRUE(mgr_->Create());
  std::string v2dir;
  for (const std::string& d : mgr_->Dirs())
    if (PathExists(d + "/cgroup.max.descendants")) v2dir = d;
  oci::LinuxResources r;
  r.unified = {{"cgroup.max.descendants", "7"}};
  auto ap = mgr_->Apply(r);
  if (v2dir.empty()) {  // v1 without a hybrid cgroup2 mount
    ASSERT_FALSE(ap);
    EXPECT_NE(ap.error().message().find("linux.resources.unified"), std::string::npos);
  } else {
    ASSERT_TRUE(ap) << ap.error().message();
    EXPECT_EQ(Trim(*ReadFile(v2dir + "/cgroup.max.descendants")), "7");
  }
  r.unified = {{"nosuchctl.limit", "1"}};
  auto missing = mgr_->Apply(r);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("nosuchctl.limit"), std::string::npos)
      << missing.error().message();
  oci::LinuxResources rd;
  rd.rdma["mlx5_0"] = {1, 2};
  bool has_rdma = false;
  for (const std::string& d : mgr_->Dirs()) has_rdma |= PathExists(d + "/rdma.max");
  auto rdma = mgr_->Apply(rd);
  if (has_rdma) {
    // A device this machine lacks: the kernel refuses the line, named by the field.
    if (!rdma) {
      EXPECT_NE(rdma.error().message().find("rdma"), std::string::npos);
    }
  } else {
    ASSERT_FALSE(rdma);
    EXPECT_NE(rdma.error().message().find("linux.resources.rdma"), std::string::npos)
        << rdma.error().message();
  }
}

// The way a container's init gets in without anybody moving it (and paying the RCU grace
// period of the global threadgroup lock): born in CloneIntoDir(), writing "0" into
// SelfJoinFiles(). It must end up in the cgroup in every hierarchy Dirs() lists.
TEST_P(CgroupLiveTest, CloneIntoAndJoinSelfReachEveryHierarchy) {
  ASSERT_TRUE(mgr_->Create());
  std::vector<std::string> files = mgr_->SelfJoinFiles();
  std::string into = mgr_->CloneIntoDir();
  if (mgr_->version() == Version::kV1) {
    EXPECT_FALSE(files.empty());
    for (const auto& f : files) EXPECT_EQ(Basename(f), "tasks") << f;
  } else {
    EXPECT_TRUE(files.empty());
    EXPECT_EQ(into, mgr_->Dirs()[0]);
  }
  UniqueFd into_fd;
  if (!into.empty()) {
    into_fd = UniqueFd(::open(into.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(into_fd) << into;
  }
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  struct {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
  } args{};
  args.exit_signal = SIGCHLD;
  if (into_fd) {
    args.flags = 0x200000000ULL;  // CLONE_INTO_CGROUP
    args.cgroup = static_cast<uint64_t>(into_fd.get());
  }
  pid_ = static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
  if (pid_ == 0) {
    char ok = JoinSelf(files) ? '1' : '0';
    (void)!write(ready[1], &ok, 1);
    for (;;) pause();
  }
  ASSERT_GT(pid_, 0) << strerror(errno);
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  EXPECT_EQ(ok, '1');
  for (const auto& d : mgr_->Dirs()) {
    auto procs = ReadProcs(d);
    ASSERT_TRUE(procs) << d;
    EXPECT_EQ(*procs, std::vector<pid_t>{pid_}) << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, CgroupLiveTest, ::testing::Values(false, true));

}  // namespace
}  // namespace shale::runtime::cgroup
