// cgroup v2: one directory in the unified hierarchy.
#include <sys/stat.h>
#include <time.h>

#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/cgroup/devices.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime::cgroup {
namespace {

class V2 : public CgroupManager {
 public:
  V2(std::string root, std::string path)
      : root_(std::move(root)), path_(std::move(path)), dir_(root_ + "/" + path_) {}

  Version version() const override { return Version::kV2; }

  Result<void> Create() override {
    // Enable memory, cpu, pids (those available) in every ancestor's subtree_control, so the
    // container's directory gets their files.
    std::string cur = root_;
    size_t i = 0;
    while (i <= path_.size()) {
      size_t j = path_.find('/', i);
      if (j == std::string::npos) j = path_.size();
      std::string avail = TRY(ReadCgroupFile(cur + "/cgroup.controllers"));
      std::vector<std::string> have = Split(Trim(avail), ' ');
      std::string enable;
      for (const char* c : {"memory", "cpu", "pids", "io", "hugetlb"}) {
        for (const auto& h : have)
          if (h == c) enable += std::string(enable.empty() ? "" : " ") + "+" + c;
      }
      if (!enable.empty()) TRY(WriteCgroupFile(cur + "/cgroup.subtree_control", enable));
      std::string next = cur + "/" + path_.substr(i, j - i);
      if (::mkdir(next.c_str(), 0755) != 0 && errno != EEXIST)
        return Error::FromErrno(errno, "mkdir " + next);
      cur = std::move(next);
      i = j + 1;
    }
    return Ok();
  }

  Result<void> AddTask(pid_t pid) override {
    return WriteCgroupFile(dir_ + "/cgroup.procs", std::to_string(pid)).Wrap("join cgroup");
  }

  std::string CloneIntoDir() const override { return dir_; }
  std::vector<std::string> SelfJoinFiles() const override { return {}; }

  Result<void> Apply(const oci::LinuxResources& r) override {
    if (r.network_class_id || !r.network_priorities.empty())
      return Error(Errc::kUnsupported,
                   "linux.resources.network (classID, priorities): cgroup v2 has no net_cls or "
                   "net_prio controller; remove linux.resources.network from config.json");
    std::vector<CgroupWrite> writes =
        TRY(IoV2Writes(r, PathExists(dir_ + "/io.bfq.weight")));
    for (CgroupWrite& w : TRY(HugetlbWrites(r, true))) writes.push_back(std::move(w));
    TRY(ApplyWrites(dir_, writes));
    if (r.memory_use_hierarchy && !*r.memory_use_hierarchy)
      return Error(Errc::kUnsupported, "linux.resources.memory.useHierarchy false: cgroup v2 is "
                                       "always hierarchical");
    TRY(CheckMemoryLimitAboveUsage(r, dir_ + "/memory.current"));
    if (r.memory_limit) {
      TRY(WriteCgroupFile(dir_ + "/memory.max",
                          *r.memory_limit > 0 ? std::to_string(*r.memory_limit) : "max"));
      std::string swap = dir_ + "/memory.swap.max";
      if (PathExists(swap)) TRY(WriteCgroupFile(swap, SwapMaxValue(r.memory_limit, r.memory_swap)));
    }
    if (r.cpu_quota || r.cpu_period)
      TRY(WriteCgroupFile(dir_ + "/cpu.max", CpuMaxValue(r.cpu_quota, r.cpu_period)));
    if (r.cpu_shares)
      TRY(WriteCgroupFile(dir_ + "/cpu.weight", std::to_string(SharesToWeight(*r.cpu_shares))));
    {
      std::vector<CgroupWrite> w;  // after cpu.max: the kernel refuses a burst above the quota
      if (r.cpu_burst)
        w.push_back({"linux.resources.cpu.burst", "cpu.max.burst", std::to_string(*r.cpu_burst)});
      if (r.cpu_idle) w.push_back({"linux.resources.cpu.idle", "cpu.idle", std::to_string(*r.cpu_idle)});
      TRY(ApplyWrites(dir_, w));
    }
    if (r.pids_limit)
      TRY(WriteCgroupFile(dir_ + "/pids.max",
                          *r.pids_limit > 0 ? std::to_string(*r.pids_limit) : "max"));
    if (r.memory_reservation)
      TRY(WriteCgroupFile(dir_ + "/memory.low", std::to_string(*r.memory_reservation)));
    if (!r.cpu_cpus.empty()) TRY(WriteCgroupFile(dir_ + "/cpuset.cpus", r.cpu_cpus));
    if (!r.cpu_mems.empty()) TRY(WriteCgroupFile(dir_ + "/cpuset.mems", r.cpu_mems));
    if (r.memory_swappiness || r.memory_disable_oom_killer || r.memory_kernel ||
        r.memory_kernel_tcp || r.cpu_realtime_runtime || r.cpu_realtime_period)
      return Error(Errc::kUnsupported,
                   "cgroup v2 has no memory swappiness, disableOOMKiller, kernel memory or "
                   "realtime cpu limits: remove them from linux.resources");
    if (!r.devices.empty()) TRY(AttachDeviceFilter(dir_, r.devices));
    TRY(ApplyWrites(dir_, TRY(RdmaWrites(r))));
    TRY(ApplyWrites(dir_, TRY(UnifiedWrites(r))));  // last: it overrides the converted fields
    return Ok();
  }

  Result<void> Freeze(bool frozen) override {
    TRY(WriteCgroupFile(dir_ + "/cgroup.freeze", frozen ? "1" : "0"));
    for (int i = 0; i < 400; ++i) {
      std::string ev = TRY(ReadCgroupFile(dir_ + "/cgroup.events"));
      auto f = KeyedValue(ev, "frozen");
      if (f && (*f == 1) == frozen) return Ok();
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    return Error(Errc::kBusy, dir_ + ": cgroup.events did not report frozen " +
                                  std::string(frozen ? "1" : "0") + " within 2 s");
  }

  Result<std::vector<pid_t>> Pids() const override { return ReadProcs(dir_); }

  Result<bool> OomKilled() const override {
    auto c = ReadCgroupFile(dir_ + "/memory.events");
    if (!c) {
      if (c.error().code() == Errc::kNotFound) return false;
      return std::move(c).error();
    }
    auto n = KeyedValue(*c, "oom_kill");
    return n && *n > 0;
  }

  Result<void> KillAll() override {
    // cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks included.
    std::string kill = dir_ + "/cgroup.kill";
    if (PathExists(kill)) (void)WriteCgroupFile(kill, "1");
    return KillProcsIn(dir_);
  }

  Result<void> Remove() override { return RemoveCgroupDir(dir_); }
  std::vector<std::string> Dirs() const override { return {dir_}; }

 private:
  std::string root_, path_, dir_;
};

}  // namespace

std::unique_ptr<CgroupManager> NewV2(std::string root, std::string path) {
  return std::make_unique<V2>(std::move(root), std::move(path));
}

}  // namespace shale::runtime::cgroup
