#include "oci/runtime_spec.h"

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
};

void DecodeProcess(const json& p, Process* out, Cursor* c) {
  c->field = "process.terminal";
  Get(p, "terminal", &out->terminal);
  if (auto it = p.find("consoleSize"); it != p.end() && !it->is_null()) {
    c->field = "process.consoleSize";
    Get(*it, "height", &out->console_height);
    Get(*it, "width", &out->console_width);
  }
  if (auto it = p.find("user"); it != p.end() && !it->is_null()) {
    c->field = "process.user";
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
      Get(r, "type", &rl.type);
      Get(r, "hard", &rl.hard);
      Get(r, "soft", &rl.soft);
      out->rlimits.push_back(std::move(rl));
    }
  }
  c->field = "process.noNewPrivileges";
  Get(p, "noNewPrivileges", &out->no_new_privileges);
}

void DecodeLinux(const json& l, Linux* out, Cursor* c) {
  if (auto it = l.find("namespaces"); it != l.end() && !it->is_null()) {
    c->field = "linux.namespaces";
    for (const json& n : it->get_ref<const json::array_t&>()) {
      Namespace ns;
      Get(n, "type", &ns.type);
      Get(n, "path", &ns.path);
      out->namespaces.push_back(std::move(ns));
    }
  }
  if (auto it = l.find("resources"); it != l.end() && !it->is_null()) {
    const json& r = *it;
    if (auto m = r.find("memory"); m != r.end() && !m->is_null()) {
      c->field = "linux.resources.memory";
      GetOpt(*m, "limit", &out->resources.memory_limit);
      GetOpt(*m, "swap", &out->resources.memory_swap);
    }
    if (auto cpu = r.find("cpu"); cpu != r.end() && !cpu->is_null()) {
      c->field = "linux.resources.cpu";
      GetOpt(*cpu, "quota", &out->resources.cpu_quota);
      GetOpt(*cpu, "period", &out->resources.cpu_period);
      GetOpt(*cpu, "shares", &out->resources.cpu_shares);
    }
    if (auto p = r.find("pids"); p != r.end() && !p->is_null()) {
      c->field = "linux.resources.pids";
      GetOpt(*p, "limit", &out->resources.pids_limit);
    }
    if (auto d = r.find("devices"); d != r.end() && !d->is_null()) {
      c->field = "linux.resources.devices";
      for (const json& dj : d->get_ref<const json::array_t&>()) {
        DeviceRule rule;
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
    Seccomp sc;
    sc.default_action.clear();
    Get(*it, "defaultAction", &sc.default_action);
    GetOpt(*it, "defaultErrnoRet", &sc.default_errno_ret);
    Get(*it, "architectures", &sc.architectures);
    Get(*it, "flags", &sc.flags);
    if (auto s = it->find("syscalls"); s != it->end() && !s->is_null()) {
      c->field = "linux.seccomp.syscalls";
      for (const json& sj : s->get_ref<const json::array_t&>()) {
        SeccompSyscall sys;
        Get(sj, "names", &sys.names);
        Get(sj, "action", &sys.action);
        GetOpt(sj, "errnoRet", &sys.errno_ret);
        if (auto a = sj.find("args"); a != sj.end() && !a->is_null()) {
          for (const json& aj : a->get_ref<const json::array_t&>()) {
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
  j["process"] = std::move(proc);

  j["root"] = {{"path", spec.root.path}, {"readonly", spec.root.readonly}};
  if (!spec.hostname.empty()) j["hostname"] = spec.hostname;

  json mounts = json::array();
  for (const Mount& m : spec.mounts) {
    json mj = {{"destination", m.destination}, {"type", m.type}, {"source", m.source}};
    if (!m.options.empty()) mj["options"] = m.options;
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
  json res = json::object();
  const LinuxResources& r = l.resources;
  if (r.memory_limit || r.memory_swap) {
    json m = json::object();
    if (r.memory_limit) m["limit"] = *r.memory_limit;
    if (r.memory_swap) m["swap"] = *r.memory_swap;
    res["memory"] = std::move(m);
  }
  if (r.cpu_quota || r.cpu_period || r.cpu_shares) {
    json c = json::object();
    if (r.cpu_quota) c["quota"] = *r.cpu_quota;
    if (r.cpu_period) c["period"] = *r.cpu_period;
    if (r.cpu_shares) c["shares"] = *r.cpu_shares;
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

Result<RuntimeSpec> RuntimeSpecFromJson(const nlohmann::json& j) {
  RuntimeSpec spec;
  Cursor c;
  try {
    if (!j.is_object())
      return Error(Errc::kInvalidArgument, "runtime spec: expected a JSON object");
    c.field = "ociVersion";
    Get(j, "ociVersion", &spec.oci_version);
    if (auto it = j.find("process"); it != j.end() && !it->is_null()) {
      c.field = "process";
      DecodeProcess(*it, &spec.process, &c);
    }
    if (auto it = j.find("root"); it != j.end() && !it->is_null()) {
      c.field = "root";
      Get(*it, "path", &spec.root.path);
      Get(*it, "readonly", &spec.root.readonly);
    }
    c.field = "hostname";
    Get(j, "hostname", &spec.hostname);
    if (auto it = j.find("mounts"); it != j.end() && !it->is_null()) {
      c.field = "mounts";
      for (const json& mj : it->get_ref<const json::array_t&>()) {
        Mount m;
        Get(mj, "destination", &m.destination);
        Get(mj, "type", &m.type);
        Get(mj, "source", &m.source);
        Get(mj, "options", &m.options);
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
  return spec;
}

std::vector<std::string> DefaultCapabilities() {
  return {"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
          "CAP_MKNOD",  "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
          "CAP_SETFCAP", "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
          "CAP_KILL",   "CAP_AUDIT_WRITE"};
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
