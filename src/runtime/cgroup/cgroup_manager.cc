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

#include "util/fd.h"
#include "util/fs.h"

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
  auto pids = ReadProcs(dir);
  if (pids && !pids->empty())
    return Error(Errc::kBusy, "rmdir " + dir + ": cgroup still has " +
                                  std::to_string(pids->size()) + " task(s)");
  // A task that just exited may still be accounted for a moment: retry EBUSY briefly.
  for (int i = 0; i < 100; ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Ok();
    if (errno != EBUSY) return Error::FromErrno(errno, "rmdir " + dir);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return Error(Errc::kBusy, "rmdir " + dir + ": cgroup still has tasks");
}

}  // namespace shale::runtime::cgroup
