// cgroup v1: one directory per controller hierarchy.
#include <sys/stat.h>
#include <time.h>

#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/cgroup/devices.h"
#include "util/fs.h"

namespace shale::runtime::cgroup {
namespace {

constexpr const char* kControllers[] = {"memory",  "cpu",    "cpuacct", "pids",
                                        "freezer", "cpuset", "devices", "blkio",
                                        "hugetlb", "net_cls", "net_prio"};

class V1 : public CgroupManager {
 public:
  V1(std::string root, std::string path) : root_(std::move(root)), path_(std::move(path)) {
    for (const char* c : kControllers) {
      std::string mnt = root_ + "/" + c;
      if (PathExists(mnt + "/cgroup.procs")) dirs_.push_back({c, mnt + "/" + path_});
    }
    std::string unified = root_ + "/unified";
    if (PathExists(unified + "/cgroup.procs")) dirs_.push_back({"unified", unified + "/" + path_});
  }

  Version version() const override { return Version::kV1; }

  Result<void> Create() override {
    for (const auto& [ctrl, dir] : dirs_) {
      if (ctrl == "cpuset") {
        TRY(CreateCpuset());
      } else {
        TRY(MakeDirsAbs(dir, 0755));
      }
    }
    return Ok();
  }

  Result<void> AddTask(pid_t pid) override {
    std::string s = std::to_string(pid);
    for (const auto& [ctrl, dir] : dirs_)
      TRY(WriteCgroupFile(dir + "/cgroup.procs", s).Wrap("join cgroup " + ctrl));
    return Ok();
  }

  std::string CloneIntoDir() const override {
    const std::string* unified = Dir("unified");
    return unified ? *unified : "";
  }

  std::vector<std::string> SelfJoinFiles() const override {
    std::vector<std::string> out;
    for (const auto& [ctrl, dir] : dirs_)
      if (ctrl != "unified") out.push_back(dir + "/tasks");
    return out;
  }

  Result<void> Apply(const oci::LinuxResources& r) override {
    if (const std::string* mem = Dir("memory")) {
      TRY(CheckMemoryLimitAboveUsage(r, *mem + "/memory.usage_in_bytes"));
      // Linux 6.x is always hierarchical: it accepts 1 and refuses 0, named by the field.
      if (r.memory_use_hierarchy)
        TRY(ApplyWrites(*mem, {{"linux.resources.memory.useHierarchy", "memory.use_hierarchy",
                                *r.memory_use_hierarchy ? "1" : "0"}}));
    }
    if (const std::string* mem = Dir("memory"); mem && r.memory_limit) {  // after the check
      std::string limit = std::to_string(*r.memory_limit);
      TRY(WriteCgroupFile(*mem + "/memory.limit_in_bytes", limit));
      std::string memsw = *mem + "/memory.memsw.limit_in_bytes";
      if (PathExists(memsw)) {
        std::string v = limit;
        if (r.memory_swap) v = *r.memory_swap < 0 ? "-1" : std::to_string(*r.memory_swap);
        TRY(WriteCgroupFile(memsw, v));
      }
    }
    if (const std::string* cpu = Dir("cpu")) {
      if (r.cpu_period)
        TRY(WriteCgroupFile(*cpu + "/cpu.cfs_period_us", std::to_string(*r.cpu_period)));
      if (r.cpu_quota)
        TRY(WriteCgroupFile(*cpu + "/cpu.cfs_quota_us", std::to_string(*r.cpu_quota)));
      if (r.cpu_shares)
        TRY(WriteCgroupFile(*cpu + "/cpu.shares", std::to_string(*r.cpu_shares)));
      // After the quota: the kernel refuses a burst above it.
      std::vector<CgroupWrite> w;
      if (r.cpu_burst)
        w.push_back({"linux.resources.cpu.burst", "cpu.cfs_burst_us", std::to_string(*r.cpu_burst)});
      if (r.cpu_idle) w.push_back({"linux.resources.cpu.idle", "cpu.idle", std::to_string(*r.cpu_idle)});
      TRY(ApplyWrites(*cpu, w));
    } else if (r.cpu_burst || r.cpu_idle) {
      return Error(Errc::kUnsupported, "linux.resources.cpu.burst/idle: the cgroup v1 cpu "
                                       "controller is not mounted under " + root_);
    }
    if (const std::string* mem = Dir("memory")) {
      if (r.memory_reservation)
        TRY(WriteCgroupFile(*mem + "/memory.soft_limit_in_bytes",
                            std::to_string(*r.memory_reservation)));
      if (r.memory_swappiness)
        TRY(WriteCgroupFile(*mem + "/memory.swappiness", std::to_string(*r.memory_swappiness)));
      if (r.memory_disable_oom_killer)
        TRY(WriteCgroupFile(*mem + "/memory.oom_control", *r.memory_disable_oom_killer ? "1" : "0"));
      if (r.memory_kernel)
        TRY(WriteCgroupFile(*mem + "/memory.kmem.limit_in_bytes", std::to_string(*r.memory_kernel)));
      if (r.memory_kernel_tcp)
        TRY(WriteCgroupFile(*mem + "/memory.kmem.tcp.limit_in_bytes",
                            std::to_string(*r.memory_kernel_tcp)));
    }
    if (const std::string* cpu = Dir("cpu")) {
      // period first: the kernel checks runtime against it
      if (r.cpu_realtime_period)
        TRY(WriteCgroupFile(*cpu + "/cpu.rt_period_us", std::to_string(*r.cpu_realtime_period)));
      if (r.cpu_realtime_runtime)
        TRY(WriteCgroupFile(*cpu + "/cpu.rt_runtime_us", std::to_string(*r.cpu_realtime_runtime)));
    }
    if (const std::string* cs = Dir("cpuset")) {
      if (!r.cpu_cpus.empty()) TRY(WriteCgroupFile(*cs + "/cpuset.cpus", r.cpu_cpus));
      if (!r.cpu_mems.empty()) TRY(WriteCgroupFile(*cs + "/cpuset.mems", r.cpu_mems));
    } else if (!r.cpu_cpus.empty() || !r.cpu_mems.empty()) {
      return Error(Errc::kUnsupported, "cgroup v1: cpuset is not mounted under " + root_);
    }
    if (const std::string* pids = Dir("pids"); pids && r.pids_limit) {
      std::string v = *r.pids_limit > 0 ? std::to_string(*r.pids_limit) : "max";
      TRY(WriteCgroupFile(*pids + "/pids.max", v));
    }
    if (!r.devices.empty()) {
      TRY(ValidateDeviceRules(r.devices));
      const std::string* dev = Dir("devices");
      if (!dev)
        return Error(Errc::kUnsupported, "cgroup v1: the devices controller is not mounted under " +
                                             root_ + "; device rules cannot be applied");
      for (const oci::DeviceRule& rule : r.devices)
        TRY(WriteCgroupFile(*dev + (rule.allow ? "/devices.allow" : "/devices.deny"),
                            DeviceRuleLine(rule)));
    }
    {
      const std::string* blkio = Dir("blkio");
      bool bfq = blkio && PathExists(*blkio + "/blkio.bfq.weight");
      TRY(ApplyTo("blkio", BlkioV1Writes(r, bfq)));
    }
    TRY(ApplyTo("hugetlb", TRY(HugetlbWrites(r, false))));
    std::vector<CgroupWrite> net = NetworkV1Writes(r);
    TRY(ApplyTo("net_cls", net));
    TRY(ApplyTo("net_prio", net));
    if ((r.memory_limit && !Dir("memory")) || (r.pids_limit && !Dir("pids")) ||
        ((r.cpu_quota || r.cpu_shares) && !Dir("cpu")))
      return Error(Errc::kUnsupported, "cgroup v1: a controller for the requested limits is "
                                       "not mounted under " + root_);
    TRY(ApplyTo("rdma", TRY(RdmaWrites(r))));
    // unified on a v1 host: the files of the hybrid cgroup2 hierarchy (the controllers
    // bound there, and cgroup.*); runc refuses unified on v1 altogether.
    std::vector<CgroupWrite> unified = TRY(UnifiedWrites(r));
    if (!unified.empty()) {
      const std::string* dir = Dir("unified");
      if (!dir)
        return Error(Errc::kUnsupported,
                     "linux.resources.unified: this host has cgroup v1 and no cgroup2 "
                     "hierarchy at " + root_ + "/unified; remove linux.resources.unified "
                     "from config.json");
      TRY(ApplyWrites(*dir, unified));
    }
    return Ok();
  }

  Result<void> Freeze(bool frozen) override {
    const std::string* dir = Dir("freezer");
    if (!dir) return Error(Errc::kUnsupported, "cgroup v1 freezer is not mounted under " + root_);
    const char* want = frozen ? "FROZEN" : "THAWED";
    std::string state = *dir + "/freezer.state";
    for (int i = 0; i < 400; ++i) {
      TRY(WriteCgroupFile(state, want));
      std::string now = TRY(ReadCgroupFile(state));
      if (now.rfind(want, 0) == 0) return Ok();
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    return Error(Errc::kBusy, state + ": did not become " + want + " within 2 s");
  }

  Result<std::vector<pid_t>> Pids() const override {
    if (dirs_.empty()) return Error(Errc::kUnsupported, "no cgroup v1 hierarchy under " + root_);
    const std::string* d = Dir("pids");
    return ReadProcs(d ? *d : dirs_.front().second);
  }

  Result<bool> OomKilled() const override {
    const std::string* mem = Dir("memory");
    if (!mem) return false;
    std::string c = TRY(ReadCgroupFile(*mem + "/memory.oom_control"));
    auto n = KeyedValue(c, "oom_kill");
    return n && *n > 0;
  }

  Result<void> KillAll() override {
    for (const auto& [ctrl, dir] : dirs_) TRY(KillProcsIn(dir));
    return Ok();
  }

  Result<void> Remove() override {
    std::optional<Error> first;
    for (const auto& [ctrl, dir] : dirs_) {
      auto r = RemoveCgroupDir(dir);
      if (!r && !first) first = std::move(r).error();
    }
    if (first) return std::move(*first);
    return Ok();
  }

  std::vector<std::string> Dirs() const override {
    std::vector<std::string> out;
    for (const auto& d : dirs_) out.push_back(d.second);
    return out;
  }

 private:
  const std::string* Dir(std::string_view ctrl) const {
    for (const auto& d : dirs_)
      if (d.first == ctrl) return &d.second;
    return nullptr;
  }

  // Those of `writes` that are files of `ctrl` ("<ctrl>.*"), in its directory; kUnsupported
  // naming the field if the controller is not mounted.
  Result<void> ApplyTo(const std::string& ctrl, const std::vector<CgroupWrite>& all) const {
    std::vector<CgroupWrite> writes;
    for (const CgroupWrite& w : all)
      if (w.file.rfind(ctrl + ".", 0) == 0) writes.push_back(w);
    if (writes.empty()) return Ok();
    const std::string* dir = Dir(ctrl);
    if (!dir)
      return Error(Errc::kUnsupported, writes.front().field + ": the cgroup v1 " + ctrl +
                                           " controller is not mounted under " + root_ +
                                           "; remove " + writes.front().field +
                                           " from config.json or mount the controller");
    return ApplyWrites(*dir, writes);
  }

  // cpuset refuses tasks until cpuset.cpus and cpuset.mems are set: copy them from the
  // parent at every level we create.
  Result<void> CreateCpuset() {
    std::string cur = root_ + "/cpuset";
    size_t i = 0;
    while (i <= path_.size()) {
      size_t j = path_.find('/', i);
      if (j == std::string::npos) j = path_.size();
      std::string next = cur + "/" + path_.substr(i, j - i);
      if (::mkdir(next.c_str(), 0755) != 0 && errno != EEXIST)
        return Error::FromErrno(errno, "mkdir " + next);
      for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
        std::string mine = TRY(ReadCgroupFile(next + "/" + f));
        if (mine.find_first_not_of(" \n") != std::string::npos) continue;
        std::string parent = TRY(ReadCgroupFile(cur + "/" + f));
        TRY(WriteCgroupFile(next + "/" + f, parent));
      }
      cur = std::move(next);
      i = j + 1;
    }
    return Ok();
  }

  std::string root_, path_;
  std::vector<std::pair<std::string, std::string>> dirs_;  // controller, directory
};

}  // namespace

std::unique_ptr<CgroupManager> NewV1(std::string root, std::string path) {
  return std::make_unique<V1>(std::move(root), std::move(path));
}

}  // namespace shale::runtime::cgroup
