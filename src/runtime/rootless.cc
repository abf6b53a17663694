#include "runtime/rootless.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>

#include "runtime/state.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime {

bool UidMapIsFullRange(std::string_view uid_map) {
  int lines = 0;
  bool full = false;
  for (std::string_view line : Split(uid_map, '\n')) {
    if (Trim(line).empty()) continue;
    ++lines;
    // "         0          0 4294967295": the numbers, whatever the padding.
    std::vector<uint64_t> n;
    for (const std::string& w : Split(line, ' ')) {
      if (w.empty()) continue;
      auto v = ParseUint(Trim(w), UINT64_MAX, "uid_map");
      if (!v) return false;
      n.push_back(*v);
    }
    full = n.size() == 3 && n[0] == 0 && n[1] == 0 && n[2] == 4294967295ULL;
  }
  return lines == 1 && full;
}

bool DetectRootless(uid_t euid, std::string_view uid_map) {
  return euid != 0 || !UidMapIsFullRange(uid_map);
}

void ToRootless(oci::RuntimeSpec* spec, uid_t uid, gid_t gid) {
  std::vector<oci::Namespace> ns;
  for (const oci::Namespace& n : spec->linux.namespaces)
    if (n.type != "network" && n.type != "net" && n.type != "user") ns.push_back(n);
  ns.push_back({"user", ""});
  spec->linux.namespaces = std::move(ns);
  spec->linux.uid_mappings = {{0, static_cast<uint32_t>(uid), 1}};
  spec->linux.gid_mappings = {{0, static_cast<uint32_t>(gid), 1}};
  for (oci::Mount& m : spec->mounts) {
    if (m.destination == "/sys" || m.destination == "/sys/") {
      m = {"/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}};
      continue;
    }
    std::erase_if(m.options, [](const std::string& o) {
      return StartsWith(o, "uid=") || StartsWith(o, "gid=");
    });
  }
  spec->linux.resources = {};
}

std::vector<std::string> ResourceLimitFields(const oci::LinuxResources& r) {
  std::vector<std::string> f;
  auto add = [&f](bool set, const char* name) {
    if (set) f.push_back(std::string("linux.resources.") + name);
  };
  add(r.memory_limit.has_value(), "memory.limit");
  add(r.memory_reservation.has_value(), "memory.reservation");
  add(r.memory_swap.has_value(), "memory.swap");
  add(r.memory_kernel.has_value(), "memory.kernel");
  add(r.memory_kernel_tcp.has_value(), "memory.kernelTCP");
  add(r.memory_swappiness.has_value(), "memory.swappiness");
  add(r.memory_disable_oom_killer.has_value(), "memory.disableOOMKiller");
  add(r.cpu_shares.has_value(), "cpu.shares");
  add(r.cpu_quota.has_value(), "cpu.quota");
  add(r.cpu_period.has_value(), "cpu.period");
  add(r.cpu_realtime_runtime.has_value(), "cpu.realtimeRuntime");
  add(r.cpu_realtime_period.has_value(), "cpu.realtimePeriod");
  add(!r.cpu_cpus.empty(), "cpu.cpus");
  add(!r.cpu_mems.empty(), "cpu.mems");
  add(r.pids_limit.has_value(), "pids.limit");
  add(std::any_of(r.devices.begin(), r.devices.end(),
                  [](const oci::DeviceRule& d) { return d.allow; }),
      "devices");
  add(r.blkio_weight.has_value(), "blockIO.weight");
  add(r.blkio_leaf_weight.has_value(), "blockIO.leafWeight");
  add(!r.blkio_weight_device.empty(), "blockIO.weightDevice");
  add(!r.blkio_throttle_read_bps.empty(), "blockIO.throttleReadBpsDevice");
  add(!r.blkio_throttle_write_bps.empty(), "blockIO.throttleWriteBpsDevice");
  add(!r.blkio_throttle_read_iops.empty(), "blockIO.throttleReadIOPSDevice");
  add(!r.blkio_throttle_write_iops.empty(), "blockIO.throttleWriteIOPSDevice");
  add(!r.hugepage_limits.empty(), "hugepageLimits");
  add(r.network_class_id.has_value(), "network.classID");
  add(!r.network_priorities.empty(), "network.priorities");
  return f;
}

bool IsSelfMapping(const std::vector<oci::IdMapping>& maps, uint32_t id) {
  return maps.size() == 1 && maps[0].host_id == id && maps[0].size == 1;
}

std::vector<std::string> IdMapToolArgs(const char* tool, pid_t pid,
                                       const std::vector<oci::IdMapping>& maps) {
  std::vector<std::string> a = {tool, std::to_string(pid)};
  for (const oci::IdMapping& m : maps) {
    a.push_back(std::to_string(m.container_id));
    a.push_back(std::to_string(m.host_id));
    a.push_back(std::to_string(m.size));
  }
  return a;
}

namespace {

Result<void> WriteProcFile(pid_t pid, const char* file, std::string_view text,
                           std::string_view why) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!f || write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return Error::FromErrno(errno, "write " + std::string(file) + " of the container's user "
                                       "namespace" + std::string(why));
  return Ok();
}

// Runs newuidmap/newgidmap (setuid root: they check /etc/subuid, /etc/subgid), its stderr
// kept for the message.
Result<void> RunIdMapTool(const std::vector<std::string>& args, const char* subid_file) {
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe for " + args[0]);
  UniqueFd rd(err_pipe[0]), wr(err_pipe[1]);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Error::FromErrno(errno, "fork for " + args[0]);
  if (pid == 0) {
    dup2(wr.get(), 2);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  wr.reset();
  std::string out = ReadAll(rd.get(), args[0]).value_or("");
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Ok();
  std::string cmd;
  for (const std::string& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && out.empty())
    return Error(Errc::kNotFound, args[0] + " not found: install the uidmap package for more "
                                            "than one id mapping in rootless mode");
  return Error(Errc::kPermission,
               cmd + " failed (" + std::string(Trim(out)) + "): the mappings must lie in the "
                     "caller's ranges in " + subid_file + ", or map only its own id (size 1)");
}

}  // namespace

Result<void> WriteIdMapsUnprivileged(pid_t pid, const oci::Linux& l) {
  auto text = [](const std::vector<oci::IdMapping>& maps) {
    std::string t;
    for (const oci::IdMapping& m : maps)
      t += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
           std::to_string(m.size) + "\n";
    return t;
  };
  if (IsSelfMapping(l.uid_mappings, geteuid()))
    TRY(WriteProcFile(pid, "uid_map", text(l.uid_mappings), " (own uid)"));
  else
    TRY(RunIdMapTool(IdMapToolArgs("newuidmap", pid, l.uid_mappings), "/etc/subuid"));
  if (IsSelfMapping(l.gid_mappings, getegid())) {
    // Unprivileged, gid_map may be written only once setgroups is denied (else the
    // container's root could drop a group the host uses to deny it access).
    TRY(WriteProcFile(pid, "setgroups", "deny", ""));
    return WriteProcFile(pid, "gid_map", text(l.gid_mappings), " (own gid)");
  }
  return RunIdMapTool(IdMapToolArgs("newgidmap", pid, l.gid_mappings), "/etc/subgid");
}

std::vector<pid_t> Descendants(pid_t root, const std::vector<std::pair<pid_t, pid_t>>& pid_ppid) {
  std::multimap<pid_t, pid_t> children;
  for (const auto& [p, pp] : pid_ppid) children.emplace(pp, p);
  std::vector<pid_t> out;
  std::deque<pid_t> todo = {root};
  while (!todo.empty()) {
    pid_t p = todo.front();
    todo.pop_front();
    if (std::find(out.begin(), out.end(), p) != out.end()) continue;  // a cycle in bad input
    out.push_back(p);
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) todo.push_back(it->second);
  }
  return out;
}

namespace {

// Field 4 of /proc/<pid>/stat (after the parenthesised comm, which may hold spaces).
pid_t ParentOf(pid_t pid) {
  auto s = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!s) return -1;
  size_t close = s->rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> f = Split(std::string_view(*s).substr(close + 1), ' ');
  // f[0] is empty (the space after ')'), f[1] the state, f[2] the parent.
  if (f.size() < 3) return -1;
  auto v = ParseInt(f[2], 0, INT32_MAX, "ppid");
  return v ? static_cast<pid_t>(*v) : -1;
}

bool SameNs(const std::string& a, const std::string& b) {
  struct stat x, y;
  return stat(a.c_str(), &x) == 0 && stat(b.c_str(), &y) == 0 && x.st_ino == y.st_ino &&
         x.st_dev == y.st_dev;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> out;
  auto names = ListDir("/proc");
  for (const std::string& n : names ? *names : std::vector<std::string>{}) {
    auto v = ParseInt(n, 1, INT32_MAX, "pid");
    if (v) out.push_back(static_cast<pid_t>(*v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<pid_t> ProcessPids(pid_t pid, uint64_t pid_start) {
  if (pid <= 0 || ProcessStartTime(pid) != pid_start || pid_start == 0) return {};
  std::string init_ns = "/proc/" + std::to_string(pid) + "/ns/pid";
  std::vector<pid_t> all = AllPids();
  if (!SameNs(init_ns, "/proc/self/ns/pid")) {
    // Its own pid namespace: exec'd processes (children of `shale-runc exec`, not of the
    // init) are in it too.
    std::vector<pid_t> out;
    for (pid_t p : all)
      if (SameNs("/proc/" + std::to_string(p) + "/ns/pid", init_ns)) out.push_back(p);
    return out;
  }
  std::vector<std::pair<pid_t, pid_t>> pairs;
  for (pid_t p : all) pairs.emplace_back(p, ParentOf(p));
  return Descendants(pid, pairs);
}

}  // namespace shale::runtime
