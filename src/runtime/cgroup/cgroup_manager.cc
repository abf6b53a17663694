#include "runtime/cgroup/cgroup_manager.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <functional>

#include "util/fd.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime::cgroup {

Result<Version> DetectVersion(const std::string& root) {
  struct statfs st;
  if (statfs(root.c_str(), &st) != 0) return Error::FromErrno(errno, "statfs " + root);
  if (st.f_type == CGROUP2_SUPER_MAGIC) return Version::kV2;
  if (st.f_type == TMPFS_MAGIC) {
    for (const char* ctrl : {"memory", "pids", "cpu"}) {
      struct statfs cs;
      std::string p = root + "/" + ctrl;
      if (statfs(p.c_str(), &cs) == 0 && cs.f_type == CGROUP_SUPER_MAGIC) return Version::kV1;
    }
  }
  return Error(Errc::kUnsupported,
               root + " is neither a cgroup2 mount nor a tmpfs of cgroup v1 hierarchies; mount "
                      "cgroups there");
}

Result<std::unique_ptr<CgroupManager>> NewCgroupManager(std::string_view path,
                                                        const std::string& root) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return Error(Errc::kInvalidArgument, "cgroupsPath is empty");
  for (size_t i = 0; i <= path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == "." || part == "..")
      return Error(Errc::kInvalidArgument,
                   "cgroupsPath " + std::string(path) + ": must be a relative path without '..'");
    i = j + 1;
  }
  Version v = TRY(DetectVersion(root));
  if (v == Version::kV2) return NewV2(root, std::string(path));
  return NewV1(root, std::string(path));
}

uint64_t SharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

CpuQuota CpusToQuota(double cpus) {
  CpuQuota q;
  q.period = 100000;
  q.quota = static_cast<int64_t>(std::llround(cpus * 100000.0));
  return q;
}

std::string CpuMaxValue(std::optional<int64_t> quota, std::optional<uint64_t> period) {
  std::string q = (quota && *quota > 0) ? std::to_string(*quota) : "max";
  return q + " " + std::to_string(period.value_or(100000));
}

std::string SwapMaxValue(std::optional<int64_t> limit, std::optional<int64_t> swap) {
  if (!swap) return "0";
  if (*swap < 0) return "max";
  int64_t s = *swap - limit.value_or(0);
  return std::to_string(s < 0 ? 0 : s);
}

namespace {

std::string DeviceKey(int64_t major, int64_t minor) {
  return std::to_string(major) + ":" + std::to_string(minor);
}

void AddThrottles(const oci::LinuxResources& r, std::vector<CgroupWrite>* out,
                  const std::function<CgroupWrite(const char* field, const char* kind,
                                                  const oci::BlockIoThrottleDevice&)>& make) {
  const std::pair<const char*, const std::vector<oci::BlockIoThrottleDevice>*> lists[] = {
      {"throttleReadBpsDevice", &r.blkio_throttle_read_bps},
      {"throttleWriteBpsDevice", &r.blkio_throttle_write_bps},
      {"throttleReadIOPSDevice", &r.blkio_throttle_read_iops},
      {"throttleWriteIOPSDevice", &r.blkio_throttle_write_iops}};
  const char* kinds[] = {"read_bps", "write_bps", "read_iops", "write_iops"};
  for (size_t i = 0; i < 4; ++i)
    for (const oci::BlockIoThrottleDevice& d : *lists[i].second)
      out->push_back(make(lists[i].first, kinds[i], d));
}

}  // namespace

std::vector<CgroupWrite> BlkioV1Writes(const oci::LinuxResources& r, bool bfq) {
  const std::string f = "linux.resources.blockIO.";
  std::vector<CgroupWrite> w;
  const char* weight = bfq ? "blkio.bfq.weight" : "blkio.weight";
  const char* weight_device = bfq ? "blkio.bfq.weight_device" : "blkio.weight_device";
  if (r.blkio_weight) w.push_back({f + "weight", weight, std::to_string(*r.blkio_weight)});
  if (r.blkio_leaf_weight)
    w.push_back({f + "leafWeight", "blkio.leaf_weight", std::to_string(*r.blkio_leaf_weight)});
  for (const oci::BlockIoWeightDevice& d : r.blkio_weight_device) {
    std::string key = DeviceKey(d.major, d.minor);
    if (d.weight)
      w.push_back({f + "weightDevice", weight_device, key + " " + std::to_string(*d.weight)});
    if (d.leaf_weight)
      w.push_back({f + "weightDevice", "blkio.leaf_weight_device",
                   key + " " + std::to_string(*d.leaf_weight)});
  }
  AddThrottles(r, &w, [&f](const char* field, const char* kind, const oci::BlockIoThrottleDevice& d) {
    return CgroupWrite{f + field, std::string("blkio.throttle.") + kind + "_device",
                       DeviceKey(d.major, d.minor) + " " + std::to_string(d.rate)};
  });
  return w;
}

uint64_t BlkioWeightToIoWeight(uint64_t weight) {
  if (weight == 0) return 0;
  if (weight < 10) weight = 10;
  if (weight > 1000) weight = 1000;
  return 1 + (weight - 10) * 9999 / 990;
}

Result<std::vector<CgroupWrite>> IoV2Writes(const oci::LinuxResources& r, bool bfq) {
  const std::string f = "linux.resources.blockIO.";
  bool leaf = r.blkio_leaf_weight.has_value();
  for (const oci::BlockIoWeightDevice& d : r.blkio_weight_device) leaf |= d.leaf_weight.has_value();
  if (leaf)
    return Error(Errc::kUnsupported, f + "leafWeight: cgroup v2 has no leaf weights; remove "
                                         "leafWeight from linux.resources.blockIO");
  std::vector<CgroupWrite> w;
  auto weight = [bfq](uint64_t v) { return std::to_string(bfq ? v : BlkioWeightToIoWeight(v)); };
  const char* file = bfq ? "io.bfq.weight" : "io.weight";
  if (r.blkio_weight) w.push_back({f + "weight", file, weight(*r.blkio_weight)});
  for (const oci::BlockIoWeightDevice& d : r.blkio_weight_device)
    if (d.weight)
      w.push_back({f + "weightDevice", file, DeviceKey(d.major, d.minor) + " " + weight(*d.weight)});
  AddThrottles(r, &w, [&f](const char* field, const char* kind, const oci::BlockIoThrottleDevice& d) {
    static const std::pair<std::string_view, const char*> keys[] = {
        {"read_bps", "rbps"}, {"write_bps", "wbps"}, {"read_iops", "riops"}, {"write_iops", "wiops"}};
    const char* key = "";
    for (const auto& [k, v] : keys)
      if (k == kind) key = v;
    return CgroupWrite{f + field, "io.max",
                       DeviceKey(d.major, d.minor) + " " + key + "=" + std::to_string(d.rate)};
  });
  return w;
}

Result<std::vector<CgroupWrite>> HugetlbWrites(const oci::LinuxResources& r, bool v2) {
  std::vector<CgroupWrite> w;
  for (const oci::HugepageLimit& h : r.hugepage_limits) {
    const std::string& s = h.page_size;
    // The kernel's names (hugetlb_cgroup.c mem_fmt): a number and KB, MB or GB. Checked so a
    // page size cannot name another file.
    size_t digits = s.find_first_not_of("0123456789");
    if (digits == 0 || digits == std::string::npos || s.size() != digits + 2 ||
        std::string_view("KMG").find(s[digits]) == std::string_view::npos || s.back() != 'B')
      return Error(Errc::kInvalidArgument,
                   "linux.resources.hugepageLimits: page size \"" + s +
                       "\" is not of the kernel's form (\"2MB\", \"1GB\")");
    w.push_back({"linux.resources.hugepageLimits",
                 "hugetlb." + s + (v2 ? ".max" : ".limit_in_bytes"), std::to_string(h.limit)});
  }
  return w;
}

std::vector<CgroupWrite> NetworkV1Writes(const oci::LinuxResources& r) {
  std::vector<CgroupWrite> w;
  if (r.network_class_id)
    w.push_back({"linux.resources.network.classID", "net_cls.classid",
                 std::to_string(*r.network_class_id)});
  for (const auto& [name, prio] : r.network_priorities)
    w.push_back({"linux.resources.network.priorities", "net_prio.ifpriomap",
                 name + " " + std::to_string(prio)});
  return w;
}

Result<std::vector<CgroupWrite>> RdmaWrites(const oci::LinuxResources& r) {
  std::vector<CgroupWrite> w;
  for (const auto& [dev, lim] : r.rdma) {
    std::string field = "linux.resources.rdma." + dev;
    if (dev.empty() || dev.find_first_of(" \t\n") != std::string::npos)
      return Error(Errc::kInvalidArgument, "linux.resources.rdma: device name \"" + dev +
                                               "\" is empty or holds a space or newline");
    auto count = [](const std::optional<uint32_t>& v) {
      return v ? std::to_string(*v) : std::string("max");
    };
    w.push_back({field, "rdma.max",
                 dev + " hca_handle=" + count(lim.hca_handles) +
                     " hca_object=" + count(lim.hca_objects)});
  }
  return w;
}

Result<std::vector<CgroupWrite>> UnifiedWrites(const oci::LinuxResources& r) {
  std::vector<CgroupWrite> w;
  for (const auto& [key, value] : r.unified) {
    std::string field = "linux.resources.unified[\"" + key + "\"]";
    size_t dot = key.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == key.size() ||
        key.find('/') != std::string::npos)
      return Error(Errc::kInvalidArgument,
                   field + ": not a cgroup file name (\"<controller>.<name>\", as memory.high)");
    if (key == "cgroup.procs" || key == "cgroup.threads" || key == "cgroup.kill")
      return Error(Errc::kInvalidArgument,
                   field + ": moves or kills tasks, it is not a resource limit");
    w.push_back({field, key, value});
  }
  return w;
}

Result<void> CheckMemoryLimitAboveUsage(const oci::LinuxResources& r, const std::string& usage_file) {
  if (!r.memory_check_before_update.value_or(false) || !r.memory_limit || *r.memory_limit <= 0)
    return Ok();
  if (!PathExists(usage_file)) return Ok();
  std::string text = TRY(ReadCgroupFile(usage_file));
  uint64_t usage = TRY(ParseUint(Trim(text), UINT64_MAX, usage_file));
  if (usage > static_cast<uint64_t>(*r.memory_limit))
    return Error(Errc::kInvalidArgument,
                 "linux.resources.memory.checkBeforeUpdate: the new limit " +
                     std::to_string(*r.memory_limit) + " is below the current usage " +
                     std::to_string(usage) + " (" + usage_file + "); the limit is unchanged");
  return Ok();
}

Result<void> ApplyWrites(const std::string& dir, const std::vector<CgroupWrite>& writes) {
  for (const CgroupWrite& w : writes) {
    std::string path = dir + "/" + w.file;
    if (!PathExists(path))
      return Error(Errc::kUnsupported, w.field + ": " + path +
                                           " does not exist: the kernel offers no such control "
                                           "here; remove " + w.field + " from config.json");
    TRY(WriteCgroupFile(path, w.value).Wrap(w.field));
  }
  return Ok();
}

Result<void> WriteCgroupFile(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::FromErrno(errno, "write \"" + std::string(value) + "\" to " + path);
  return Ok();
}

Result<void> JoinSelf(const std::vector<std::string>& tasks_files) {
  for (const std::string& f : tasks_files) TRY(WriteCgroupFile(f, "0").Wrap("join cgroup"));
  return Ok();
}

Result<std::string> ReadCgroupFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  return ReadAll(fd, path);
}

std::optional<int64_t> KeyedValue(std::string_view content, std::string_view key) {
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string_view::npos) nl = content.size();
    std::string_view line = content.substr(pos, nl - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key &&
        line[key.size()] == ' ') {
      return std::strtoll(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
    }
    pos = nl + 1;
  }
  return std::nullopt;
}

Result<std::vector<pid_t>> ReadProcs(const std::string& dir) {
  std::string content = TRY(ReadCgroupFile(dir + "/cgroup.procs"));
  std::vector<pid_t> pids;
  const char* p = content.c_str();
  while (*p) {
    char* end;
    long v = std::strtol(p, &end, 10);
    if (end == p) break;
    pids.push_back(static_cast<pid_t>(v));
    p = end;
    while (*p == '\n') ++p;
  }
  return pids;
}

Result<void> KillProcsIn(const std::string& dir) {
  for (int i = 0; i < 400; ++i) {
    auto pids = ReadProcs(dir);
    if (!pids) {
      if (pids.error().code() == Errc::kNotFound) return Ok();
      return std::move(pids).error();
    }
    if (pids->empty()) return Ok();
    for (pid_t p : *pids) ::kill(p, SIGKILL);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return Error(Errc::kBusy, "cgroup " + dir + ": tasks still running 2 s after SIGKILL");
}

Result<void> RemoveCgroupDir(const std::string& dir) {
  // rmdir first: the common case (no task left) costs one call per hierarchy; the tasks are
  // read only when the kernel refuses.
  for (int i = 0; i < 100; ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Ok();
    if (errno != EBUSY) return Error::FromErrno(errno, "rmdir " + dir);
    auto pids = ReadProcs(dir);
    if (pids && !pids->empty())
      return Error(Errc::kBusy, "rmdir " + dir + ": cgroup still has " +
                                    std::to_string(pids->size()) + " task(s)");
    // A task that just exited may still be accounted for a moment: retry EBUSY briefly.
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return Error(Errc::kBusy, "rmdir " + dir + ": cgroup still has tasks");
}

}  // namespace shale::runtime::cgroup
