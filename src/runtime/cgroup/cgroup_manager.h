// Cgroups for one container: an interface with cgroup v1 and v2 backends (youki's
// CgroupManager, translated).
//
// A container's cgroup is named by its OCI cgroupsPath ("shale/<id>"), relative to the root
// of every hierarchy. v2 (pure unified, /sys/fs/cgroup is cgroup2): one directory,
// controllers enabled in the parents' cgroup.subtree_control. v1: one directory per
// controller hierarchy (/sys/fs/cgroup/<ctrl>/<path>), plus /sys/fs/cgroup/unified/<path>
// when a hybrid layout mounts cgroup2 there, so the container is tracked there as well.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runtime::cgroup {

enum class Version { kV1, kV2 };

// Where cgroups are mounted. Tests may point `root` elsewhere.
inline constexpr const char* kDefaultRoot = "/sys/fs/cgroup";

// kV2 if `root` is a cgroup2 mount (CGROUP2_SUPER_MAGIC), kV1 if it holds v1 controller
// hierarchies, kUnsupported otherwise.
Result<Version> DetectVersion(const std::string& root = kDefaultRoot);

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;
  virtual Version version() const = 0;
  // mkdir of the cgroup in every hierarchy (existing is fine). v1 cpuset: cpus/mems copied
  // from the parent so tasks can join.
  virtual Result<void> Create() = 0;
  // Moves `pid` into the cgroup in every hierarchy.
  virtual Result<void> AddTask(pid_t pid) = 0;
  // The faster way in, for a child not born yet: moving another process (cgroup.procs) takes
  // the kernel's global threadgroup rwsem for writing, an RCU grace period (~8 ms here, most
  // of a container's start). A child cloned into CloneIntoDir() (clone3 CLONE_INTO_CGROUP,
  // cgroup2 only; "" if none) and writing "0" into each of SelfJoinFiles() (v1 `tasks`: one
  // thread, itself, no global lock) is in the cgroup in every hierarchy without it.
  virtual std::string CloneIntoDir() const = 0;
  virtual std::vector<std::string> SelfJoinFiles() const = 0;
  virtual Result<void> Apply(const oci::LinuxResources& resources) = 0;
  // Returns once the kernel reports the cgroup frozen (or thawed); kBusy after ~2 s.
  virtual Result<void> Freeze(bool frozen) = 0;
  virtual Result<std::vector<pid_t>> Pids() const = 0;
  // True if the kernel OOM-killed a task in this cgroup.
  virtual Result<bool> OomKilled() const = 0;
  // SIGKILLs every task and waits (bounded, ~2 s) until none remains; kBusy otherwise.
  virtual Result<void> KillAll() = 0;
  // rmdir in every hierarchy; missing is success. Kills nothing: kBusy if tasks remain.
  virtual Result<void> Remove() = 0;
  // The directories of this cgroup, for messages and tests.
  virtual std::vector<std::string> Dirs() const = 0;
};

// The manager for `path` (an OCI cgroupsPath; leading "/" ignored). kInvalidArgument for an
// empty path or one with "..". Touches nothing on disk.
Result<std::unique_ptr<CgroupManager>> NewCgroupManager(std::string_view path,
                                                        const std::string& root = kDefaultRoot);
std::unique_ptr<CgroupManager> NewV1(std::string root, std::string path);
std::unique_ptr<CgroupManager> NewV2(std::string root, std::string path);

// --- Value conversions (pure) ---

// cgroup v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), as runc/crun convert.
uint64_t SharesToWeight(uint64_t shares);
struct CpuQuota {
  int64_t quota = 0;      // microseconds per period
  uint64_t period = 0;
};
// docker --cpus: 1.5 -> {150000, 100000}.
CpuQuota CpusToQuota(double cpus);
// v2 cpu.max line: "150000 100000", "max 100000".
std::string CpuMaxValue(std::optional<int64_t> quota, std::optional<uint64_t> period);
// v2 memory.swap.max from OCI memory.{limit,swap} (swap is memory+swap): "0" when swap is
// unset (no swap, Docker's default for --memory), "max" for -1, else swap - limit.
std::string SwapMaxValue(std::optional<int64_t> limit, std::optional<int64_t> swap);

// One write of a cgroup file for a linux.resources field: `file` relative to the container's
// cgroup directory of its controller, `field` the spec field it comes from (for messages).
struct CgroupWrite {
  std::string field;
  std::string file;
  std::string value;
  bool operator==(const CgroupWrite&) const = default;
};
// v1 blockIO -> blkio.* as runc writes them: weights to CFQ's blkio.weight{,_device} and
// blkio.leaf_weight{,_device}, or to BFQ's blkio.bfq.weight{,_device} when `bfq` (BFQ has no
// leaf weights); throttles to blkio.throttle.{read,write}_{bps,iops}_device ("8:0 1024").
std::vector<CgroupWrite> BlkioV1Writes(const oci::LinuxResources& r, bool bfq);
// v1 blkio weight (10..1000) -> v2 io.weight (1..10000), as runc converts.
uint64_t BlkioWeightToIoWeight(uint64_t weight);
// v2 blockIO -> io.bfq.weight (`bfq`: weights as given) or io.weight (converted), and io.max
// lines ("8:0 rbps=1024"). kUnsupported naming leafWeight: v2 has no leaf weights.
Result<std::vector<CgroupWrite>> IoV2Writes(const oci::LinuxResources& r, bool bfq);
// hugepageLimits -> hugetlb.<size>.limit_in_bytes (v1) or hugetlb.<size>.max (v2).
// kInvalidArgument for a page size not of the kernel's form ("2MB", "1GB", "64KB").
Result<std::vector<CgroupWrite>> HugetlbWrites(const oci::LinuxResources& r, bool v2);
// v1 network -> net_cls.classid (file under the net_cls hierarchy) and net_prio.ifpriomap
// lines "lo 10" (under net_prio).
std::vector<CgroupWrite> NetworkV1Writes(const oci::LinuxResources& r);
// rdma -> rdma.max lines ("mlx5_1 hca_handle=2 hca_object=max"), the same in v1 and v2.
// kInvalidArgument for a device name that is empty or holds a space or a newline.
Result<std::vector<CgroupWrite>> RdmaWrites(const oci::LinuxResources& r);
// unified -> one write per key, the file named by the key. kInvalidArgument for a key that
// is not a cgroup file name ("<controller>.<name>", no "/"), and for cgroup.procs,
// cgroup.threads and cgroup.kill, which move or kill tasks rather than set a limit.
Result<std::vector<CgroupWrite>> UnifiedWrites(const oci::LinuxResources& r);
// linux.resources.memory.checkBeforeUpdate: kInvalidArgument when `usage_file` (v1
// memory.usage_in_bytes, v2 memory.current) shows more than the new limit. Ok without the
// check, without a positive limit, or when the file does not exist yet.
Result<void> CheckMemoryLimitAboveUsage(const oci::LinuxResources& r, const std::string& usage_file);
// Writes each of `writes` under `dir`; a file that does not exist is kUnsupported naming the
// field and the file (the kernel or its I/O scheduler lacks it), as is a write it refuses.
Result<void> ApplyWrites(const std::string& dir, const std::vector<CgroupWrite>& writes);
// Child side of SelfJoinFiles(): writes "0" into each (the caller must be single-threaded).
Result<void> JoinSelf(const std::vector<std::string>& tasks_files);

// --- Helpers shared by the backends ---
Result<void> WriteCgroupFile(const std::string& path, std::string_view value);
Result<std::string> ReadCgroupFile(const std::string& path);
// Parses a "key N" line from a flat keyed file (memory.events, memory.oom_control).
std::optional<int64_t> KeyedValue(std::string_view content, std::string_view key);
Result<std::vector<pid_t>> ReadProcs(const std::string& dir);
// SIGKILL every pid listed in dir/cgroup.procs until it is empty (bounded by ~2 s).
Result<void> KillProcsIn(const std::string& dir);
// rmdir; ENOENT is success, EBUSY is kBusy.
Result<void> RemoveCgroupDir(const std::string& dir);

}  // namespace shale::runtime::cgroup
