#include "oci/runtime_spec.h"


#include "util/log.h"

namespace shale::oci {
namespace {

using nlohmann::json;

json CapsToJson(const Capabilities& c) {
  json j = json::object();
  auto put = [&](const char* k, const std::vector<std::string>& v) {
    if (!v.empty()) j[k] = v;
  };
  put("bounding", c.bounding);
  put("effective", c.effective);
  put("inheritable", c.inheritable);
  put("permitted", c.permitted);
  put("ambient", c.ambient);
  return j;
}

json IdMappingsToJson(const std::vector<IdMapping>& v) {
  json arr = json::array();
  for (const IdMapping& m : v)
    arr.push_back({{"containerID", m.container_id}, {"hostID", m.host_id}, {"size", m.size}});
  return arr;
}

// What the kernel takes in a uid_map/gid_map (user_namespaces(7)), checked here so that the
// error names the field: each line non-empty and within 32 bits, no two lines overlapping on
// the container side or on the host side, at most 340 lines.
Result<void> CheckIdMappings(const std::string& field, const std::vector<IdMapping>& maps) {
  constexpr size_t kMaxLines = 340;
  if (maps.size() > kMaxLines)
    return Error(Errc::kInvalidArgument, "runtime spec: " + field + ": " +
                                             std::to_string(maps.size()) +
                                             " mappings, the kernel takes at most 340");
  auto end = [](uint32_t start, uint32_t size) { return uint64_t{start} + size; };
  for (size_t i = 0; i < maps.size(); ++i) {
    const IdMapping& m = maps[i];
    if (m.size == 0 || end(m.container_id, m.size) > (uint64_t{1} << 32) ||
        end(m.host_id, m.size) > (uint64_t{1} << 32))
      return Error(Errc::kInvalidArgument,
                   "runtime spec: " + field + ": a mapping of size " + std::to_string(m.size) +
                       " from " + std::to_string(m.container_id) + " to " +
                       std::to_string(m.host_id) + " is out of range");
    for (size_t k = 0; k < i; ++k) {
      const IdMapping& o = maps[k];
      bool inside = m.container_id < end(o.container_id, o.size) &&
                    o.container_id < end(m.container_id, m.size);
      bool outside = m.host_id < end(o.host_id, o.size) && o.host_id < end(m.host_id, m.size);
      if (inside || outside)
        return Error(Errc::kInvalidArgument,
                     "runtime spec: " + field + ": mappings " + std::to_string(k) + " and " +
                         std::to_string(i) + " overlap (" + (inside ? "containerID" : "hostID") +
                         " ranges)");
    }
  }
  return Ok();
}

// Reads an optional member into `out`; nlohmann throws on a type mismatch, which the caller
// turns into kInvalidArgument naming `field`.
template <typename T>
void Get(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) *out = it->template get<T>();
}

template <typename T>
void GetOpt(const json& j, const char* key, std::optional<T>* out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) *out = it->template get<T>();
}

// Tracks the field being decoded so an exception can name it.
struct Cursor {
  std::string field;
  std::vector<std::string> unsupported;  // fields present that shale does not implement
  std::vector<std::string> unknown;      // fields the runtime spec does not define
};

bool IsEmptyValue(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>().empty();
  return v.is_null() || ((v.is_object() || v.is_array()) && v.empty());
}

// The members the runtime spec (v1.2) defines, by object, where shale implements only some:
// one of these that shale does not implement is refused; a member the spec does not define
// at all is ignored, as config.md requires of runtimes ("MUST NOT generate an error if they
// encounter an unknown property").
struct SpecFields {
  std::string_view path;
  std::initializer_list<std::string_view> names;
};
const SpecFields kSpecFields[] = {
    {"", {"solaris", "windows", "vm", "zos"}},
    {"process", {"commandLine", "apparmorProfile", "execCPUAffinity"}},
    {"process.user", {"username"}},
    {"linux", {"timeOffsets", "intelRdt", "netDevices"}},
};

bool InSpec(std::string_view path, std::string_view key) {
  for (const SpecFields& f : kSpecFields)
    if (f.path == path)
      for (std::string_view n : f.names)
        if (n == key) return true;
  return false;
}

// Records every member of `j` not in `known` (and not empty) by its path: as unsupported if
// the spec defines it, else as unknown (ignored).
void CheckKnown(const json& j, std::string_view path, std::initializer_list<std::string_view> known,
                Cursor* c) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool ok = false;
    for (std::string_view k : known) ok |= (k == it.key());
    if (ok || IsEmptyValue(it.value())) continue;
    std::string name = std::string(path) + (path.empty() ? "" : ".") + it.key();
    (InSpec(path, it.key()) ? c->unsupported : c->unknown).push_back(std::move(name));
  }
}

void DecodeHookList(const json& h, const char* key, std::vector<Hook>* out, Cursor* c) {
  auto it = h.find(key);
  if (it == h.end() || it->is_null()) return;
  c->field = std::string("hooks.") + key;
  for (const json& hj : it->get_ref<const json::array_t&>()) {
    CheckKnown(hj, c->field, {"path", "args", "env", "timeout"}, c);
    Hook hook;
    Get(hj, "path", &hook.path);
    Get(hj, "args", &hook.args);
    Get(hj, "env", &hook.env);
    GetOpt(hj, "timeout", &hook.timeout);
    out->push_back(std::move(hook));
  }
}

void DecodeHooks(const json& h, Hooks* out, Cursor* c) {
  CheckKnown(h, "hooks",
             {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"},
             c);
  DecodeHookList(h, "prestart", &out->prestart, c);
  DecodeHookList(h, "createRuntime", &out->create_runtime, c);
  DecodeHookList(h, "createContainer", &out->create_container, c);
  DecodeHookList(h, "startContainer", &out->start_container, c);
  DecodeHookList(h, "poststart", &out->poststart, c);
  DecodeHookList(h, "poststop", &out->poststop, c);
}

// `path` is the object holding `key`: "linux" or "mounts".
void DecodeIdMappings(const json& l, std::string_view path, const char* key,
                      std::vector<IdMapping>* out, Cursor* c) {
  auto it = l.find(key);
  if (it == l.end() || it->is_null()) return;
  c->field = std::string(path) + "." + key;
  for (const json& mj : it->get_ref<const json::array_t&>()) {
    CheckKnown(mj, c->field, {"containerID", "hostID", "size"}, c);
    IdMapping m;
    Get(mj, "containerID", &m.container_id);
    Get(mj, "hostID", &m.host_id);
    Get(mj, "size", &m.size);
    out->push_back(m);
  }
}

void DecodeProcess(const json& p, Process* out, Cursor* c) {
  CheckKnown(p, "process",
             {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities", "rlimits",
              "noNewPrivileges", "oomScoreAdj", "selinuxLabel", "scheduler", "ioPriority"},
             c);
  if (auto it = p.find("scheduler"); it != p.end() && !it->is_null() && !it->empty()) {
    c->field = "process.scheduler";
    CheckKnown(*it, c->field, {"policy", "nice", "priority", "flags", "runtime", "deadline", "period"},
               c);
    Process::Scheduler sch;
    Get(*it, "policy", &sch.policy);
    GetOpt(*it, "nice", &sch.nice);
    GetOpt(*it, "priority", &sch.priority);
    Get(*it, "flags", &sch.flags);
    GetOpt(*it, "runtime", &sch.runtime);
    GetOpt(*it, "deadline", &sch.deadline);
    GetOpt(*it, "period", &sch.period);
    out->scheduler = std::move(sch);
  }
  if (auto it = p.find("ioPriority"); it != p.end() && !it->is_null() && !it->empty()) {
    c->field = "process.ioPriority";
    CheckKnown(*it, c->field, {"class", "priority"}, c);
    Process::IoPriority io;
    Get(*it, "class", &io.io_class);
    Get(*it, "priority", &io.priority);
    out->io_priority = std::move(io);
  }
  c->field = "process.selinuxLabel";
  Get(p, "selinuxLabel", &out->selinux_label);
  c->field = "process.oomScoreAdj";
  GetOpt(p, "oomScoreAdj", &out->oom_score_adj);
  c->field = "process.terminal";
  Get(p, "terminal", &out->terminal);
  if (auto it = p.find("consoleSize"); it != p.end() && !it->is_null()) {
    c->field = "process.consoleSize";
    Get(*it, "height", &out->console_height);
    Get(*it, "width", &out->console_width);
  }
  if (auto it = p.find("user"); it != p.end() && !it->is_null()) {
    c->field = "process.user";
    CheckKnown(*it, "process.user", {"uid", "gid", "umask", "additionalGids"}, c);
    GetOpt(*it, "umask", &out->user.umask);
    Get(*it, "uid", &out->user.uid);
    Get(*it, "gid", &out->user.gid);
    Get(*it, "additionalGids", &out->user.additional_gids);
  }
  c->field = "process.args";
  Get(p, "args", &out->args);
  c->field = "process.env";
  Get(p, "env", &out->env);
  c->field = "process.cwd";
  Get(p, "cwd", &out->cwd);
  if (auto it = p.find("capabilities"); it != p.end() && !it->is_null()) {
    c->field = "process.capabilities";
    CheckKnown(*it, "process.capabilities",
               {"bounding", "effective", "inheritable", "permitted", "ambient"}, c);
    Get(*it, "bounding", &out->capabilities.bounding);
    Get(*it, "effective", &out->capabilities.effective);
    Get(*it, "inheritable", &out->capabilities.inheritable);
    Get(*it, "permitted", &out->capabilities.permitted);
    Get(*it, "ambient", &out->capabilities.ambient);
  }
  if (auto it = p.find("rlimits"); it != p.end() && !it->is_null()) {
    c->field = "process.rlimits";
    for (const json& r : it->get_ref<const json::array_t&>()) {
      Rlimit rl;
      CheckKnown(r, "process.rlimits", {"type", "hard", "soft"}, c);
      Get(r, "type", &rl.type);
      Get(r, "hard", &rl.hard);
      Get(r, "soft", &rl.soft);
      out->rlimits.push_back(std::move(rl));
    }
  }
  c->field = "process.noNewPrivileges";
  Get(p, "noNewPrivileges", &out->no_new_privileges);
}

void DecodeThrottle(const json& b, const char* key, std::vector<BlockIoThrottleDevice>* out,
                    Cursor* c) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return;
  c->field = std::string("linux.resources.blockIO.") + key;
  for (const json& dj : it->get_ref<const json::array_t&>()) {
    CheckKnown(dj, c->field, {"major", "minor", "rate"}, c);
    BlockIoThrottleDevice d;
    Get(dj, "major", &d.major);
    Get(dj, "minor", &d.minor);
    Get(dj, "rate", &d.rate);
    out->push_back(d);
  }
}

void DecodeBlockIo(const json& b, LinuxResources* out, Cursor* c) {
  CheckKnown(b, "linux.resources.blockIO",
             {"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
              "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"},
             c);
  GetOpt(b, "weight", &out->blkio_weight);
  GetOpt(b, "leafWeight", &out->blkio_leaf_weight);
  if (auto it = b.find("weightDevice"); it != b.end() && !it->is_null()) {
    c->field = "linux.resources.blockIO.weightDevice";
    for (const json& dj : it->get_ref<const json::array_t&>()) {
      CheckKnown(dj, c->field, {"major", "minor", "weight", "leafWeight"}, c);
      BlockIoWeightDevice d;
      Get(dj, "major", &d.major);
      Get(dj, "minor", &d.minor);
      GetOpt(dj, "weight", &d.weight);
      GetOpt(dj, "leafWeight", &d.leaf_weight);
      out->blkio_weight_device.push_back(d);
    }
  }
  DecodeThrottle(b, "throttleReadBpsDevice", &out->blkio_throttle_read_bps, c);
  DecodeThrottle(b, "throttleWriteBpsDevice", &out->blkio_throttle_write_bps, c);
  DecodeThrottle(b, "throttleReadIOPSDevice", &out->blkio_throttle_read_iops, c);
  DecodeThrottle(b, "throttleWriteIOPSDevice", &out->blkio_throttle_write_iops, c);
}

void DecodeLinux(const json& l, Linux* out, Cursor* c) {
  CheckKnown(l, "linux",
             {"namespaces", "uidMappings", "gidMappings", "resources", "cgroupsPath",
              "maskedPaths", "readonlyPaths", "seccomp", "sysctl", "rootfsPropagation", "devices", "mountLabel",
              "personality"},
             c);
  if (auto it = l.find("personality"); it != l.end() && !it->is_null() && !it->empty()) {
    c->field = "linux.personality";
    CheckKnown(*it, c->field, {"domain", "flags"}, c);
    Personality per;
    Get(*it, "domain", &per.domain);
    Get(*it, "flags", &per.flags);
    out->personality = std::move(per);
  }
  c->field = "linux.mountLabel";
  Get(l, "mountLabel", &out->mount_label);
  if (auto it = l.find("devices"); it != l.end() && !it->is_null()) {
    c->field = "linux.devices";
    for (const json& dj : it->get_ref<const json::array_t&>()) {
      CheckKnown(dj, "linux.devices", {"path", "type", "major", "minor", "fileMode", "uid", "gid"},
                 c);
      Device d;
      Get(dj, "path", &d.path);
      Get(dj, "type", &d.type);
      Get(dj, "major", &d.major);
      Get(dj, "minor", &d.minor);
      GetOpt(dj, "fileMode", &d.file_mode);
      GetOpt(dj, "uid", &d.uid);
      GetOpt(dj, "gid", &d.gid);
      out->devices.push_back(std::move(d));
    }
  }
  DecodeIdMappings(l, "linux", "uidMappings", &out->uid_mappings, c);
  DecodeIdMappings(l, "linux", "gidMappings", &out->gid_mappings, c);
  c->field = "linux.sysctl";
  Get(l, "sysctl", &out->sysctl);
  c->field = "linux.rootfsPropagation";
  Get(l, "rootfsPropagation", &out->rootfs_propagation);
  if (auto it = l.find("namespaces"); it != l.end() && !it->is_null()) {
    c->field = "linux.namespaces";
    for (const json& n : it->get_ref<const json::array_t&>()) {
      CheckKnown(n, "linux.namespaces", {"type", "path"}, c);
      Namespace ns;
      Get(n, "type", &ns.type);
      Get(n, "path", &ns.path);
      out->namespaces.push_back(std::move(ns));
    }
  }
  if (auto it = l.find("resources"); it != l.end() && !it->is_null()) {
    const json& r = *it;
    CheckKnown(r, "linux.resources",
               {"memory", "cpu", "pids", "devices", "blockIO", "hugepageLimits", "network",
                "rdma", "unified"},
               c);
    if (auto rd = r.find("rdma"); rd != r.end() && !rd->is_null()) {
      for (auto it = rd->begin(); it != rd->end(); ++it) {
        c->field = "linux.resources.rdma." + it.key();
        CheckKnown(it.value(), c->field, {"hcaHandles", "hcaObjects"}, c);
        LinuxResources::RdmaLimit lim;
        GetOpt(it.value(), "hcaHandles", &lim.hca_handles);
        GetOpt(it.value(), "hcaObjects", &lim.hca_objects);
        out->resources.rdma[it.key()] = lim;
      }
    }
    if (auto u = r.find("unified"); u != r.end() && !u->is_null()) {
      c->field = "linux.resources.unified";
      out->resources.unified = u->get<std::map<std::string, std::string>>();
    }
    if (auto b = r.find("blockIO"); b != r.end() && !b->is_null()) {
      c->field = "linux.resources.blockIO";
      DecodeBlockIo(*b, &out->resources, c);
    }
    if (auto h = r.find("hugepageLimits"); h != r.end() && !h->is_null()) {
      c->field = "linux.resources.hugepageLimits";
      for (const json& hj : h->get_ref<const json::array_t&>()) {
        CheckKnown(hj, c->field, {"pageSize", "limit"}, c);
        HugepageLimit hl;
        Get(hj, "pageSize", &hl.page_size);
        Get(hj, "limit", &hl.limit);
        out->resources.hugepage_limits.push_back(std::move(hl));
      }
    }
    if (auto n = r.find("network"); n != r.end() && !n->is_null()) {
      c->field = "linux.resources.network";
      CheckKnown(*n, c->field, {"classID", "priorities"}, c);
      GetOpt(*n, "classID", &out->resources.network_class_id);
      if (auto p = n->find("priorities"); p != n->end() && !p->is_null()) {
        c->field = "linux.resources.network.priorities";
        for (const json& pj : p->get_ref<const json::array_t&>()) {
          CheckKnown(pj, c->field, {"name", "priority"}, c);
          std::pair<std::string, uint32_t> prio;
          Get(pj, "name", &prio.first);
          Get(pj, "priority", &prio.second);
          out->resources.network_priorities.push_back(std::move(prio));
        }
      }
    }
    if (auto m = r.find("memory"); m != r.end() && !m->is_null()) {
      c->field = "linux.resources.memory";
      CheckKnown(*m, "linux.resources.memory",
                 {"limit", "swap", "reservation", "swappiness", "disableOOMKiller", "kernel",
                  "kernelTCP", "useHierarchy", "checkBeforeUpdate"},
                 c);
      GetOpt(*m, "useHierarchy", &out->resources.memory_use_hierarchy);
      GetOpt(*m, "checkBeforeUpdate", &out->resources.memory_check_before_update);
      GetOpt(*m, "kernel", &out->resources.memory_kernel);
      GetOpt(*m, "kernelTCP", &out->resources.memory_kernel_tcp);
      GetOpt(*m, "reservation", &out->resources.memory_reservation);
      GetOpt(*m, "swappiness", &out->resources.memory_swappiness);
      GetOpt(*m, "disableOOMKiller", &out->resources.memory_disable_oom_killer);
      GetOpt(*m, "limit", &out->resources.memory_limit);
      GetOpt(*m, "swap", &out->resources.memory_swap);
    }
    if (auto cpu = r.find("cpu"); cpu != r.end() && !cpu->is_null()) {
      c->field = "linux.resources.cpu";
      CheckKnown(*cpu, "linux.resources.cpu",
                 {"quota", "period", "shares", "cpus", "mems", "realtimeRuntime", "realtimePeriod",
                  "burst", "idle"},
                 c);
      GetOpt(*cpu, "burst", &out->resources.cpu_burst);
      GetOpt(*cpu, "idle", &out->resources.cpu_idle);
      Get(*cpu, "cpus", &out->resources.cpu_cpus);
      Get(*cpu, "mems", &out->resources.cpu_mems);
      GetOpt(*cpu, "realtimeRuntime", &out->resources.cpu_realtime_runtime);
      GetOpt(*cpu, "realtimePeriod", &out->resources.cpu_realtime_period);
      GetOpt(*cpu, "quota", &out->resources.cpu_quota);
      GetOpt(*cpu, "period", &out->resources.cpu_period);
      GetOpt(*cpu, "shares", &out->resources.cpu_shares);
    }
    if (auto p = r.find("pids"); p != r.end() && !p->is_null()) {
      c->field = "linux.resources.pids";
      CheckKnown(*p, "linux.resources.pids", {"limit"}, c);
      GetOpt(*p, "limit", &out->resources.pids_limit);
    }
    if (auto d = r.find("devices"); d != r.end() && !d->is_null()) {
      c->field = "linux.resources.devices";
      for (const json& dj : d->get_ref<const json::array_t&>()) {
        DeviceRule rule;
        CheckKnown(dj, "linux.resources.devices", {"allow", "type", "major", "minor", "access"},
                   c);
        Get(dj, "allow", &rule.allow);
        Get(dj, "type", &rule.type);
        GetOpt(dj, "major", &rule.major);
        GetOpt(dj, "minor", &rule.minor);
        Get(dj, "access", &rule.access);
        out->resources.devices.push_back(std::move(rule));
      }
    }
  }
  if (auto it = l.find("seccomp"); it != l.end() && !it->is_null()) {
    c->field = "linux.seccomp";
    CheckKnown(*it, "linux.seccomp",
               {"defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls",
                "listenerPath", "listenerMetadata"},
               c);
    Seccomp sc;
    sc.default_action.clear();
    Get(*it, "defaultAction", &sc.default_action);
    GetOpt(*it, "defaultErrnoRet", &sc.default_errno_ret);
    Get(*it, "architectures", &sc.architectures);
    Get(*it, "flags", &sc.flags);
    c->field = "linux.seccomp.listenerPath";
    Get(*it, "listenerPath", &sc.listener_path);
    c->field = "linux.seccomp.listenerMetadata";
    Get(*it, "listenerMetadata", &sc.listener_metadata);
    if (auto s = it->find("syscalls"); s != it->end() && !s->is_null()) {
      c->field = "linux.seccomp.syscalls";
      for (const json& sj : s->get_ref<const json::array_t&>()) {
        CheckKnown(sj, "linux.seccomp.syscalls", {"names", "action", "errnoRet", "args"}, c);
        SeccompSyscall sys;
        Get(sj, "names", &sys.names);
        Get(sj, "action", &sys.action);
        GetOpt(sj, "errnoRet", &sys.errno_ret);
        if (auto a = sj.find("args"); a != sj.end() && !a->is_null()) {
          for (const json& aj : a->get_ref<const json::array_t&>()) {
            CheckKnown(aj, "linux.seccomp.syscalls.args", {"index", "value", "valueTwo", "op"}, c);
            SeccompArg arg;
            Get(aj, "index", &arg.index);
            Get(aj, "value", &arg.value);
            Get(aj, "valueTwo", &arg.value_two);
            Get(aj, "op", &arg.op);
            sys.args.push_back(std::move(arg));
          }
        }
        sc.syscalls.push_back(std::move(sys));
      }
    }
    out->seccomp = std::move(sc);
  }
  c->field = "linux.cgroupsPath";
  Get(l, "cgroupsPath", &out->cgroups_path);
  c->field = "linux.maskedPaths";
  Get(l, "maskedPaths", &out->masked_paths);
  c->field = "linux.readonlyPaths";
  Get(l, "readonlyPaths", &out->readonly_paths);
}

}  // namespace

nlohmann::json ToJson(const RuntimeSpec& spec) {
  json j = json::object();
  j["ociVersion"] = spec.oci_version;

  const Process& p = spec.process;
  json proc = json::object();
  proc["terminal"] = p.terminal;
  if (p.console_height || p.console_width)
    proc["consoleSize"] = {{"height", p.console_height}, {"width", p.console_width}};
  proc["user"] = {{"uid", p.user.uid}, {"gid", p.user.gid}};
  if (!p.user.additional_gids.empty()) proc["user"]["additionalGids"] = p.user.additional_gids;
  proc["args"] = p.args;
  proc["env"] = p.env;
  proc["cwd"] = p.cwd;
  proc["capabilities"] = CapsToJson(p.capabilities);
  if (!p.rlimits.empty()) {
    json rl = json::array();
    for (const Rlimit& r : p.rlimits)
      rl.push_back({{"type", r.type}, {"hard", r.hard}, {"soft", r.soft}});
    proc["rlimits"] = std::move(rl);
  }
  proc["noNewPrivileges"] = p.no_new_privileges;
  if (p.oom_score_adj) proc["oomScoreAdj"] = *p.oom_score_adj;
  if (!p.selinux_label.empty()) proc["selinuxLabel"] = p.selinux_label;
  if (p.scheduler) {
    const Process::Scheduler& sch = *p.scheduler;
    json sj = {{"policy", sch.policy}};
    if (sch.nice) sj["nice"] = *sch.nice;
    if (sch.priority) sj["priority"] = *sch.priority;
    if (!sch.flags.empty()) sj["flags"] = sch.flags;
    if (sch.runtime) sj["runtime"] = *sch.runtime;
    if (sch.deadline) sj["deadline"] = *sch.deadline;
    if (sch.period) sj["period"] = *sch.period;
    proc["scheduler"] = std::move(sj);
  }
  if (p.io_priority)
    proc["ioPriority"] = {{"class", p.io_priority->io_class}, {"priority", p.io_priority->priority}};
  if (p.user.umask) proc["user"]["umask"] = *p.user.umask;
  j["process"] = std::move(proc);

  j["root"] = {{"path", spec.root.path}, {"readonly", spec.root.readonly}};
  if (!spec.hostname.empty()) j["hostname"] = spec.hostname;
  if (!spec.domainname.empty()) j["domainname"] = spec.domainname;
  if (!spec.hooks.empty()) {
    json hj = json::object();
    auto put = [&](const char* k, const std::vector<Hook>& hooks) {
      if (hooks.empty()) return;
      json arr = json::array();
      for (const Hook& h : hooks) {
        json one = {{"path", h.path}};
        if (!h.args.empty()) one["args"] = h.args;
        if (!h.env.empty()) one["env"] = h.env;
        if (h.timeout) one["timeout"] = *h.timeout;
        arr.push_back(std::move(one));
      }
      hj[k] = std::move(arr);
    };
    put("prestart", spec.hooks.prestart);
    put("createRuntime", spec.hooks.create_runtime);
    put("createContainer", spec.hooks.create_container);
    put("startContainer", spec.hooks.start_container);
    put("poststart", spec.hooks.poststart);
    put("poststop", spec.hooks.poststop);
    j["hooks"] = std::move(hj);
  }

  json mounts = json::array();
  for (const Mount& m : spec.mounts) {
    json mj = {{"destination", m.destination}, {"type", m.type}, {"source", m.source}};
    if (!m.options.empty()) mj["options"] = m.options;
    if (!m.uid_mappings.empty()) mj["uidMappings"] = IdMappingsToJson(m.uid_mappings);
    if (!m.gid_mappings.empty()) mj["gidMappings"] = IdMappingsToJson(m.gid_mappings);
    mounts.push_back(std::move(mj));
  }
  j["mounts"] = std::move(mounts);

  const Linux& l = spec.linux;
  json lj = json::object();
  json nss = json::array();
  for (const Namespace& n : l.namespaces) {
    json nj = {{"type", n.type}};
    if (!n.path.empty()) nj["path"] = n.path;
    nss.push_back(std::move(nj));
  }
  lj["namespaces"] = std::move(nss);
  auto maps = IdMappingsToJson;
  if (!l.uid_mappings.empty()) lj["uidMappings"] = maps(l.uid_mappings);
  if (!l.gid_mappings.empty()) lj["gidMappings"] = maps(l.gid_mappings);
  if (!l.sysctl.empty()) lj["sysctl"] = l.sysctl;
  if (l.personality) {
    lj["personality"] = {{"domain", l.personality->domain}};
    if (!l.personality->flags.empty()) lj["personality"]["flags"] = l.personality->flags;
  }
  if (!l.devices.empty()) {
    json devs = json::array();
    for (const Device& d : l.devices) {
      json dj = {{"path", d.path}, {"type", d.type}, {"major", d.major}, {"minor", d.minor}};
      if (d.file_mode) dj["fileMode"] = *d.file_mode;
      if (d.uid) dj["uid"] = *d.uid;
      if (d.gid) dj["gid"] = *d.gid;
      devs.push_back(std::move(dj));
    }
    lj["devices"] = std::move(devs);
  }
  if (!l.rootfs_propagation.empty()) lj["rootfsPropagation"] = l.rootfs_propagation;
  if (!l.mount_label.empty()) lj["mountLabel"] = l.mount_label;
  json res = json::object();
  const LinuxResources& r = l.resources;
  if (r.memory_limit || r.memory_swap || r.memory_reservation || r.memory_swappiness ||
      r.memory_disable_oom_killer || r.memory_kernel || r.memory_kernel_tcp ||
      r.memory_use_hierarchy || r.memory_check_before_update) {
    json m = json::object();
    if (r.memory_limit) m["limit"] = *r.memory_limit;
    if (r.memory_swap) m["swap"] = *r.memory_swap;
    if (r.memory_reservation) m["reservation"] = *r.memory_reservation;
    if (r.memory_swappiness) m["swappiness"] = *r.memory_swappiness;
    if (r.memory_disable_oom_killer) m["disableOOMKiller"] = *r.memory_disable_oom_killer;
    if (r.memory_kernel) m["kernel"] = *r.memory_kernel;
    if (r.memory_kernel_tcp) m["kernelTCP"] = *r.memory_kernel_tcp;
    if (r.memory_use_hierarchy) m["useHierarchy"] = *r.memory_use_hierarchy;
    if (r.memory_check_before_update) m["checkBeforeUpdate"] = *r.memory_check_before_update;
    res["memory"] = std::move(m);
  }
  if (r.cpu_quota || r.cpu_period || r.cpu_shares || !r.cpu_cpus.empty() || !r.cpu_mems.empty() ||
      r.cpu_realtime_runtime || r.cpu_realtime_period || r.cpu_burst || r.cpu_idle) {
    json c = json::object();
    if (r.cpu_quota) c["quota"] = *r.cpu_quota;
    if (r.cpu_period) c["period"] = *r.cpu_period;
    if (r.cpu_shares) c["shares"] = *r.cpu_shares;
    if (!r.cpu_cpus.empty()) c["cpus"] = r.cpu_cpus;
    if (!r.cpu_mems.empty()) c["mems"] = r.cpu_mems;
    if (r.cpu_realtime_runtime) c["realtimeRuntime"] = *r.cpu_realtime_runtime;
    if (r.cpu_realtime_period) c["realtimePeriod"] = *r.cpu_realtime_period;
    if (r.cpu_burst) c["burst"] = *r.cpu_burst;
    if (r.cpu_idle) c["idle"] = *r.cpu_idle;
    res["cpu"] = std::move(c);
  }
  if (r.pids_limit) res["pids"] = {{"limit", *r.pids_limit}};
  if (!r.devices.empty()) {
    json devs = json::array();
    for (const DeviceRule& d : r.devices) {
      json dj = {{"allow", d.allow}};
      if (!d.type.empty()) dj["type"] = d.type;
      if (d.major) dj["major"] = *d.major;
      if (d.minor) dj["minor"] = *d.minor;
      if (!d.access.empty()) dj["access"] = d.access;
      devs.push_back(std::move(dj));
    }
    res["devices"] = std::move(devs);
  }
  if (r.blkio_weight || r.blkio_leaf_weight || !r.blkio_weight_device.empty() ||
      !r.blkio_throttle_read_bps.empty() || !r.blkio_throttle_write_bps.empty() ||
      !r.blkio_throttle_read_iops.empty() || !r.blkio_throttle_write_iops.empty()) {
    json b = json::object();
    if (r.blkio_weight) b["weight"] = *r.blkio_weight;
    if (r.blkio_leaf_weight) b["leafWeight"] = *r.blkio_leaf_weight;
    if (!r.blkio_weight_device.empty()) {
      json wd = json::array();
      for (const BlockIoWeightDevice& d : r.blkio_weight_device) {
        json dj = {{"major", d.major}, {"minor", d.minor}};
        if (d.weight) dj["weight"] = *d.weight;
        if (d.leaf_weight) dj["leafWeight"] = *d.leaf_weight;
        wd.push_back(std::move(dj));
      }
      b["weightDevice"] = std::move(wd);
    }
    auto throttle = [&b](const char* key, const std::vector<BlockIoThrottleDevice>& v) {
      if (v.empty()) return;
      json a = json::array();
      for (const BlockIoThrottleDevice& d : v)
        a.push_back({{"major", d.major}, {"minor", d.minor}, {"rate", d.rate}});
      b[key] = std::move(a);
    };
    throttle("throttleReadBpsDevice", r.blkio_throttle_read_bps);
    throttle("throttleWriteBpsDevice", r.blkio_throttle_write_bps);
    throttle("throttleReadIOPSDevice", r.blkio_throttle_read_iops);
    throttle("throttleWriteIOPSDevice", r.blkio_throttle_write_iops);
    res["blockIO"] = std::move(b);
  }
  if (!r.hugepage_limits.empty()) {
    json h = json::array();
    for (const HugepageLimit& hl : r.hugepage_limits)
      h.push_back({{"pageSize", hl.page_size}, {"limit", hl.limit}});
    res["hugepageLimits"] = std::move(h);
  }
  if (r.network_class_id || !r.network_priorities.empty()) {
    json n = json::object();
    if (r.network_class_id) n["classID"] = *r.network_class_id;
    if (!r.network_priorities.empty()) {
      json p = json::array();
      for (const auto& [name, prio] : r.network_priorities)
        p.push_back({{"name", name}, {"priority", prio}});
      n["priorities"] = std::move(p);
    }
    res["network"] = std::move(n);
  }
  if (!r.rdma.empty()) {
    json rd = json::object();
    for (const auto& [dev, lim] : r.rdma) {
      json d = json::object();
      if (lim.hca_handles) d["hcaHandles"] = *lim.hca_handles;
      if (lim.hca_objects) d["hcaObjects"] = *lim.hca_objects;
      rd[dev] = std::move(d);
    }
    res["rdma"] = std::move(rd);
  }
  if (!r.unified.empty()) res["unified"] = r.unified;
  if (!res.empty()) lj["resources"] = std::move(res);
  if (!l.cgroups_path.empty()) lj["cgroupsPath"] = l.cgroups_path;
  if (!l.masked_paths.empty()) lj["maskedPaths"] = l.masked_paths;
  if (!l.readonly_paths.empty()) lj["readonlyPaths"] = l.readonly_paths;
  if (l.seccomp) {
    const Seccomp& sc = *l.seccomp;
    json sj = {{"defaultAction", sc.default_action}};
    if (sc.default_errno_ret) sj["defaultErrnoRet"] = *sc.default_errno_ret;
    if (!sc.architectures.empty()) sj["architectures"] = sc.architectures;
    if (!sc.flags.empty()) sj["flags"] = sc.flags;
    if (!sc.listener_path.empty()) sj["listenerPath"] = sc.listener_path;
    if (!sc.listener_metadata.empty()) sj["listenerMetadata"] = sc.listener_metadata;
    json calls = json::array();
    for (const SeccompSyscall& sys : sc.syscalls) {
      json cj = {{"names", sys.names}, {"action", sys.action}};
      if (sys.errno_ret) cj["errnoRet"] = *sys.errno_ret;
      if (!sys.args.empty()) {
        json args = json::array();
        for (const SeccompArg& a : sys.args)
          args.push_back(
              {{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
        cj["args"] = std::move(args);
      }
      calls.push_back(std::move(cj));
    }
    sj["syscalls"] = std::move(calls);
    lj["seccomp"] = std::move(sj);
  }
  j["linux"] = std::move(lj);

  if (!spec.annotations.is_null() && !spec.annotations.empty())
    j["annotations"] = spec.annotations;
  return j;
}

namespace {

bool SemVerIdentifierChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

// SemVer 2.0.0's grammar (semver.org), checked by hand: a std::regex of it took ~0.4 ms to
// compile on every create. Dot-separated identifiers of [0-9A-Za-z-]+; numeric ones (all
// of the core's three, the pre-release's numeric ones) without a leading zero.
bool SemVerIdentifiers(std::string_view s, size_t want, bool numeric_no_lead_zero) {
  size_t count = 0, start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view id = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (id.empty()) return false;
    bool digits = true;
    for (char c : id) {
      if (!SemVerIdentifierChar(c)) return false;
      digits &= c >= '0' && c <= '9';
    }
    if (want && !digits) return false;
    if (numeric_no_lead_zero && digits && id.size() > 1 && id[0] == '0') return false;
    ++count;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return want == 0 || count == want;
}

}  // namespace

std::optional<std::string_view> SemVerMajor(std::string_view v) {
  std::string_view build, pre;
  if (size_t plus = v.find('+'); plus != std::string_view::npos) {
    build = v.substr(plus + 1);
    v = v.substr(0, plus);
    if (!SemVerIdentifiers(build, 0, false)) return std::nullopt;
  }
  if (size_t dash = v.find('-'); dash != std::string_view::npos) {
    pre = v.substr(dash + 1);
    v = v.substr(0, dash);
    if (!SemVerIdentifiers(pre, 0, true)) return std::nullopt;
  }
  if (!SemVerIdentifiers(v, 3, true)) return std::nullopt;
  return v.substr(0, v.find('.'));
}

Result<RuntimeSpec> RuntimeSpecFromJson(const nlohmann::json& j) {
  RuntimeSpec spec;
  Cursor c;
  try {
    if (!j.is_object())
      return Error(Errc::kInvalidArgument, "runtime spec: expected a JSON object");
    CheckKnown(j, "",
               {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
                "linux", "annotations"},
               &c);
    c.field = "domainname";
    Get(j, "domainname", &spec.domainname);
    if (auto it = j.find("hooks"); it != j.end() && !it->is_null()) {
      c.field = "hooks";
      DecodeHooks(*it, &spec.hooks, &c);
    }
    c.field = "ociVersion";
    Get(j, "ociVersion", &spec.oci_version);
    if (auto it = j.find("process"); it != j.end() && !it->is_null()) {
      c.field = "process";
      DecodeProcess(*it, &spec.process, &c);
    }
    if (auto it = j.find("root"); it != j.end() && !it->is_null()) {
      c.field = "root";
      CheckKnown(*it, "root", {"path", "readonly"}, &c);
      Get(*it, "path", &spec.root.path);
      Get(*it, "readonly", &spec.root.readonly);
    }
    c.field = "hostname";
    Get(j, "hostname", &spec.hostname);
    if (auto it = j.find("mounts"); it != j.end() && !it->is_null()) {
      c.field = "mounts";
      for (const json& mj : it->get_ref<const json::array_t&>()) {
        CheckKnown(mj, "mounts",
                   {"destination", "type", "source", "options", "uidMappings", "gidMappings"},
                   &c);
        Mount m;
        Get(mj, "destination", &m.destination);
        Get(mj, "type", &m.type);
        Get(mj, "source", &m.source);
        Get(mj, "options", &m.options);
        DecodeIdMappings(mj, "mounts", "uidMappings", &m.uid_mappings, &c);
        DecodeIdMappings(mj, "mounts", "gidMappings", &m.gid_mappings, &c);
        c.field = "mounts";
        spec.mounts.push_back(std::move(m));
      }
    }
    if (auto it = j.find("linux"); it != j.end() && !it->is_null()) {
      c.field = "linux";
      DecodeLinux(*it, &spec.linux, &c);
    }
    if (auto it = j.find("annotations"); it != j.end() && !it->is_null()) {
      c.field = "annotations";
      if (!it->is_object())
        return Error(Errc::kInvalidArgument, "runtime spec: field annotations: expected an object");
      spec.annotations = *it;
    }
  } catch (const json::exception& e) {
    return Error(Errc::kInvalidArgument, "runtime spec: field " + c.field + ": " + e.what());
  }
  if (!c.unsupported.empty()) {
    std::string list;
    for (const std::string& f : c.unsupported) list += (list.empty() ? "" : ", ") + f;
    return Error(Errc::kUnsupported, "runtime spec: shale does not support " + list +
                                         "; remove " +
                                         (c.unsupported.size() == 1 ? "it" : "them") +
                                         " from config.json");
  }
  // config.md: ociVersion "MUST be in SemVer v2.0.0 format"; this runtime implements 1.x
  // (runtime-tools' misc_props requires "invalid" to be refused).
  std::optional<std::string_view> major = SemVerMajor(spec.oci_version);
  if (!major)
    return Error(Errc::kInvalidArgument, "runtime spec: ociVersion \"" + spec.oci_version +
                                             "\" is not a SemVer 2.0.0 version such as \"1.1.0\"");
  if (*major != "1")
    return Error(Errc::kUnsupported, "runtime spec: ociVersion " + spec.oci_version +
                                         ": shale implements runtime-spec 1.x");
  // config-linux.md: listenerMetadata "MUST NOT be set if listenerPath is not set".
  if (spec.linux.seccomp && spec.linux.seccomp->listener_path.empty() &&
      !spec.linux.seccomp->listener_metadata.empty())
    return Error(Errc::kInvalidArgument,
                 "runtime spec: linux.seccomp.listenerMetadata is set without "
                 "linux.seccomp.listenerPath; set the listener's path or remove the metadata");
  for (const std::string& f : c.unknown)
    LogWarn("runtime spec: ignoring " + f + ", which the runtime spec does not define");
  TRY(CheckIdMappings("linux.uidMappings", spec.linux.uid_mappings));
  TRY(CheckIdMappings("linux.gidMappings", spec.linux.gid_mappings));
  for (const Mount& m : spec.mounts) {
    std::string field = "mounts (destination " + m.destination + ")";
    // config.md: each "MUST be specified along with" the other.
    if (m.uid_mappings.empty() != m.gid_mappings.empty())
      return Error(Errc::kInvalidArgument,
                   "runtime spec: " + field + ": " +
                       (m.uid_mappings.empty() ? "gidMappings needs uidMappings"
                                               : "uidMappings needs gidMappings") +
                       " beside it (the runtime spec requires both or neither)");
    TRY(CheckIdMappings(field + ".uidMappings", m.uid_mappings));
    TRY(CheckIdMappings(field + ".gidMappings", m.gid_mappings));
  }
  return spec;
}

std::vector<std::string> DefaultCapabilities() {
  return {"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
          "CAP_MKNOD",  "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
          "CAP_SETFCAP", "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
          "CAP_KILL",   "CAP_AUDIT_WRITE"};
}

std::vector<Mount> DefaultLinuxMounts() {
  return {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts", "devpts", "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
  };
}

std::vector<std::string> DefaultMaskedPaths() {
  return {"/proc/asound",     "/proc/acpi",        "/proc/kcore",       "/proc/keys",
          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
          "/proc/scsi",       "/sys/firmware",     "/sys/devices/virtual/powercap"};
}

std::vector<std::string> DefaultReadonlyPaths() {
  return {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
}

std::vector<DeviceRule> DefaultDeviceRules() {
  auto chr = [](int64_t major, std::optional<int64_t> minor) {
    return DeviceRule{true, "c", major, minor, "rwm"};
  };
  return {
      {false, "a", std::nullopt, std::nullopt, "rwm"},  // deny everything first
      {true, "c", std::nullopt, std::nullopt, "m"},     // mknod of any char device
      {true, "b", std::nullopt, std::nullopt, "m"},     // mknod of any block device
      chr(1, 3),    // /dev/null
      chr(1, 5),    // /dev/zero
      chr(1, 7),    // /dev/full
      chr(5, 0),    // /dev/tty
      chr(1, 9),    // /dev/urandom
      chr(1, 8),    // /dev/random
      chr(136, std::nullopt),  // /dev/pts/*
      chr(5, 1),    // /dev/console
      chr(5, 2),    // /dev/ptmx
      chr(10, 200), // /dev/net/tun
  };
}

std::vector<DeviceRule> PrivilegedDeviceRules() {
  return {{true, "a", std::nullopt, std::nullopt, "rwm"}};
}

// DefaultSeccomp is in seccomp_profile.cc.

}  // namespace shale::oci
