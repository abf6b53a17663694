#include "container/spec.h"

#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <cmath>
#include <random>
#include <unordered_map>

#include "util/strings.h"

namespace shale::container {
namespace {

using nlohmann::json;

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return out;
}

// "net_admin", "CAP_NET_ADMIN", "Net_Admin" -> "CAP_NET_ADMIN".
std::string NormalizeCap(std::string_view name) {
  std::string u = Upper(name);
  if (u == "ALL") return u;
  if (!StartsWith(u, "CAP_")) u = "CAP_" + u;
  return u;
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> StringList(const json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const json& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

std::string StringOr(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string EnvKey(std::string_view kv) {
  size_t eq = kv.find('=');
  return std::string(kv.substr(0, eq));
}

}  // namespace

void MergeEnv(std::vector<std::string>& env, const std::vector<std::string>& more) {
  // One pass with an index by name: linear in both lists (a per-entry scan was quadratic,
  // a minute for an image config of 300k variables).
  std::unordered_map<std::string, size_t> at;
  at.reserve(env.size() + more.size());
  std::vector<std::string> out;
  out.reserve(env.size() + more.size());
  auto set = [&](const std::string& kv) {
    auto [it, fresh] = at.try_emplace(EnvKey(kv), out.size());
    if (fresh) {
      out.push_back(kv);
    } else {
      out[it->second] = kv;
    }
  };
  for (const std::string& e : env) set(e);
  for (const std::string& e : more) set(e);
  env = std::move(out);
}

namespace {

// "-e K" takes K from our environment (dropped if unset), as docker does.
std::optional<std::string> ExpandEnv(const std::string& e) {
  if (e.find('=') != std::string::npos) return e;
  const char* v = getenv(e.c_str());
  if (!v) return std::nullopt;
  return e + "=" + v;
}

}  // namespace

std::vector<std::string> AllCapabilities() {
  return {"CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
          "CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
          "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
          "CAP_NET_BROADCAST",   "CAP_NET_ADMIN",      "CAP_NET_RAW",         "CAP_IPC_LOCK",
          "CAP_IPC_OWNER",       "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",
          "CAP_SYS_PTRACE",      "CAP_SYS_PACCT",      "CAP_SYS_ADMIN",       "CAP_SYS_BOOT",
          "CAP_SYS_NICE",        "CAP_SYS_RESOURCE",   "CAP_SYS_TIME",
          "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",          "CAP_LEASE",           "CAP_AUDIT_WRITE",
          "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",        "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",
          "CAP_SYSLOG",          "CAP_WAKE_ALARM",     "CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",
          "CAP_PERFMON",         "CAP_BPF",            "CAP_CHECKPOINT_RESTORE"};
}

Result<std::vector<std::string>> EffectiveCapabilities(const std::vector<std::string>& add_in,
                                                       const std::vector<std::string>& drop_in,
                                                       bool privileged) {
  std::vector<std::string> all = AllCapabilities();
  if (privileged) return all;
  std::vector<std::string> add, drop;
  for (const auto& [in, out] : {std::pair{&add_in, &add}, std::pair{&drop_in, &drop}}) {
    for (const std::string& n : *in) {
      std::string c = NormalizeCap(n);
      if (c != "ALL" && !Contains(all, c))
        return Error(Errc::kInvalidArgument, "unknown capability: \"" + n + "\"");
      out->push_back(c);
    }
  }
  std::vector<std::string> base;
  if (Contains(add, "ALL")) {
    base = all;
  } else if (!Contains(drop, "ALL")) {
    base = oci::DefaultCapabilities();
  }
  std::vector<std::string> out;
  for (const std::string& c : base)
    if (!Contains(drop, c) || Contains(add, c)) out.push_back(c);
  for (const std::string& c : add)
    if (c != "ALL" && !Contains(out, c)) out.push_back(c);
  return out;
}

Result<Bind> ParseVolume(std::string_view v) {
  std::vector<std::string> parts = Split(v, ':');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
    return Error(Errc::kInvalidArgument,
                 "invalid volume \"" + std::string(v) + "\": use -v /host/path:/container/path[:ro]");
  if (parts[0][0] != '/')
    return Error(Errc::kInvalidArgument, "invalid volume \"" + std::string(v) +
                                             "\": the source must be an absolute host path "
                                             "(named volumes are not supported)");
  if (parts[1][0] != '/')
    return Error(Errc::kInvalidArgument,
                 "invalid volume \"" + std::string(v) + "\": the destination must be absolute");
  // Lexically clean the destination ("/proc/", "/./proc", "//") before judging it.
  std::string dest;
  for (const std::string& c : Split(parts[1], '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..")
      return Error(Errc::kInvalidArgument, "invalid volume specification \"" + std::string(v) +
                                               "\": the destination may not contain \"..\"");
    dest += "/" + c;
  }
  if (dest.empty())
    return Error(Errc::kInvalidArgument, "invalid volume specification \"" + std::string(v) +
                                             "\": destination can't be '/'");
  // runc refuses these too: the runtime mounts its own proc there and masks paths under
  // it, and a bind over it would hide the masks (or, as before, fail halfway).
  if (dest == "/proc" || StartsWith(dest, "/proc/"))
    return Error(Errc::kInvalidArgument, "invalid volume specification \"" + std::string(v) +
                                             "\": a bind mount on " + dest +
                                             " is not allowed (the container's /proc is its own)");
  Bind b{parts[0], dest, false};
  if (parts.size() == 3) {
    for (const std::string& o : Split(parts[2], ',')) {
      if (o == "ro") b.readonly = true;
      else if (o == "rw" || o.empty()) b.readonly = false;
      else
        return Error(Errc::kInvalidArgument,
                     "invalid volume \"" + std::string(v) + "\": unknown option " + o);
    }
  }
  return b;
}

Result<int> ParseSignal(std::string_view in) {
  std::string s(in);
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
    auto n = ParseUint(s, NSIG - 1, "signal");
    if (!n || *n == 0) return Error(Errc::kInvalidArgument, "invalid signal \"" + s + "\"");
    return static_cast<int>(*n);
  }
  for (char& c : s) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (StartsWith(s, "SIG")) s.erase(0, 3);
  for (int n = 1; n < NSIG; ++n) {
    const char* abbrev = sigabbrev_np(n);
    if (abbrev && s == abbrev) return n;
  }
  return Error(Errc::kInvalidArgument, "invalid signal \"" + std::string(in) + "\"");
}

Result<oci::Rlimit> ParseUlimit(std::string_view v) {
  size_t eq = v.find('=');
  auto bad = [&](std::string why) {
    return Error(Errc::kInvalidArgument, "invalid ulimit \"" + std::string(v) + "\": " + why);
  };
  if (eq == std::string_view::npos || eq == 0) return bad("use name=soft[:hard]");
  std::string name(v.substr(0, eq));
  static const char* kNames[] = {"core",   "cpu",     "data",  "fsize",    "locks", "memlock",
                                 "msgqueue", "nice",  "nofile", "nproc",   "rss",   "rtprio",
                                 "rttime", "sigpending", "stack", "as"};
  bool known = false;
  for (const char* n : kNames) known |= (name == n);
  if (!known) return bad("unknown limit " + name);
  auto num = [&](const std::string& s) -> Result<uint64_t> {
    if (s == "unlimited" || s == "-1") return RLIM_INFINITY;
    // Below RLIM_INFINITY: that value means "unlimited" and is spelled so.
    auto n = ParseUint(s, RLIM_INFINITY - 1, "value");
    if (!n) return bad(n.error().message());
    return *n;
  };
  std::vector<std::string> vals = Split(v.substr(eq + 1), ':');
  if (vals.empty() || vals.size() > 2) return bad("use name=soft[:hard]");
  oci::Rlimit r;
  r.type = "RLIMIT_" + Upper(name);
  r.soft = TRY(num(vals[0]));
  r.hard = vals.size() == 2 ? TRY(num(vals[1])) : r.soft;
  if (r.soft > r.hard)
    return bad("soft limit " + vals[0] + " is above the hard limit " + vals[1]);
  // Limits below which no process can start: the container's init itself needs a few fds
  // (stdio and its channel) and some memory before it can exec anything, and would fail
  // with a baffling error (EINVAL from dup, or SIGSEGV with no message) instead.
  struct Floor {
    const char* name;
    uint64_t min;
    const char* why;
  };
  static const Floor kFloors[] = {
      {"nofile", 16, "16 files (stdio and the runtime's own descriptors)"},
      {"as", 64ull << 20, "64 MiB of address space"},
      {"data", 4ull << 20, "4 MiB of data segment"},
      {"stack", 64ull << 10, "64 KiB of stack"},
  };
  for (const Floor& f : kFloors)
    if (name == f.name && r.soft < f.min)
      return bad("too low: a container needs at least " + std::string(f.why) + " to start");
  return r;
}

Result<int64_t> ParseCpus(std::string_view v) {
  std::string s(Trim(v));
  char* end = nullptr;
  double d = strtod(s.c_str(), &end);
  if (s.empty() || *end || !(d > 0) || d > 1e6)
    return Error(Errc::kInvalidArgument, "invalid --cpus \"" + s + "\": use a positive number");
  return static_cast<int64_t>(std::llround(d * 1e9));
}

Result<std::vector<std::string>> ParseEnvFile(std::string_view text) {
  std::vector<std::string> out;
  int line_no = 0;
  for (const std::string& raw : Split(text, '\n')) {
    ++line_no;
    std::string line(Trim(raw));
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '=')
      return Error(Errc::kInvalidArgument,
                   "env file line " + std::to_string(line_no) + ": variable name is empty");
    if (auto e = ExpandEnv(line)) out.push_back(*e);
  }
  return out;
}

std::vector<std::string> ProcessArgs(const ContainerConfig& c) {
  std::vector<std::string> a = c.entrypoint;
  a.insert(a.end(), c.cmd.begin(), c.cmd.end());
  return a;
}

Result<std::pair<ContainerConfig, HostConfig>> MergeConfig(
    const json& image_config, const CreateOptions& o, const std::string& id,
    const std::string& host_hostname, const std::vector<std::string>& env_file_lines) {
  const json& ic = image_config.is_object() ? image_config : json::object();
  ContainerConfig c;
  HostConfig h;
  std::string joined = NetworkContainer(o.network);
  if (o.network.empty() || (StartsWith(o.network, "container:") && !ValidName(joined)) ||
      (!StartsWith(o.network, "container:") && !ValidName(o.network)))
    return Error(Errc::kInvalidArgument,
                 "--network \"" + o.network +
                     "\": expected bridge, host, none, container:NAME|ID or a network's name");
  h.network_mode = o.network;
  h.network_aliases = o.network_aliases;
  if (!o.network_aliases.empty() && (!UsesCni(o.network) || o.network == "bridge"))
    return Error(Errc::kInvalidArgument,
                 "--network-alias is only supported on user networks (shale network create)");
  for (const std::string& a : o.network_aliases)
    if (!ValidName(a)) return Error(Errc::kInvalidArgument, "--network-alias \"" + a + "\" is not a valid name");
  for (const std::string& p : o.publish) {
    auto ms = TRY(network::ParsePublish(p));
    h.port_bindings.insert(h.port_bindings.end(), ms.begin(), ms.end());
  }
  h.publish_all = o.publish_all;
  if (o.publish_all) {
    auto ms = TRY(network::ExposedToMappings(ic.value("ExposedPorts", json::object())));
    for (const auto& m : ms) {
      bool dup = false;
      for (const auto& b : h.port_bindings) dup |= b.container_port == m.container_port && b.protocol == m.protocol;
      if (!dup) h.port_bindings.push_back(m);
    }
  }
  if (!h.port_bindings.empty() && !UsesCni(o.network)) {
    if (!joined.empty() || o.network == "none")
      return Error(Errc::kInvalidArgument, "conflicting options: port publishing and the "
                                           "network mode " + o.network);
    h.port_bindings.clear();  // docker: published ports are discarded with the host network
  }
  if (!o.hostname.empty()) {
    c.hostname = o.hostname;
  } else if (o.network == "host") {
    c.hostname = host_hostname;
  } else {
    c.hostname = id.substr(0, 12);
  }
  // Environment: the image's (with a default PATH), then --env-file, then -e.
  std::vector<std::string> env = StringList(ic.value("Env", json()));
  bool has_path = false;
  for (const std::string& e : env) has_path |= StartsWith(e, "PATH=");
  if (!has_path) env.insert(env.begin(), kDefaultPath);
  std::vector<std::string> more = env_file_lines;
  for (const std::string& e : o.env) {
    if (e.empty() || e[0] == '=')
      return Error(Errc::kInvalidArgument, "-e \"" + e + "\": variable name is empty");
    if (auto x = ExpandEnv(e)) more.push_back(*x);
  }
  MergeEnv(env, more);
  c.env = std::move(env);

  if (o.entrypoint) {
    c.entrypoint.clear();
    if (!o.entrypoint->empty()) c.entrypoint.push_back(*o.entrypoint);
    c.cmd = o.cmd;  // docker: a new entrypoint drops the image's Cmd
  } else {
    c.entrypoint = StringList(ic.value("Entrypoint", json()));
    c.cmd = o.cmd.empty() ? StringList(ic.value("Cmd", json())) : o.cmd;
  }
  if (ProcessArgs(c).empty())
    return Error(Errc::kInvalidArgument,
                 "no command specified: the image has no Cmd or Entrypoint; give one after "
                 "the image name");
  c.working_dir = !o.workdir.empty() ? o.workdir : StringOr(ic, "WorkingDir");
  if (!c.working_dir.empty() && c.working_dir[0] != '/')
    return Error(Errc::kInvalidArgument,
                 "-w \"" + c.working_dir + "\": the working directory must be absolute");
  c.user = !o.user.empty() ? o.user : StringOr(ic, "User");
  c.image = o.image;
  c.tty = o.tty;
  c.open_stdin = o.interactive;
  c.stop_signal = StringOr(ic, "StopSignal");
  // Refused now: accepted, it would only fail at `stop`, leaving the container running.
  if (!c.stop_signal.empty())
    TRY(ParseSignal(c.stop_signal).Wrap("the image's StopSignal"));
  if (auto it = ic.find("Labels"); it != ic.end() && it->is_object()) c.labels = *it;

  if (!o.memory.empty()) {
    h.memory = TRY(ParseSize(o.memory).Wrap("--memory"));
    if (h.memory < 6 * 1024 * 1024)
      return Error(Errc::kInvalidArgument,
                   "--memory " + o.memory + ": the minimum memory limit is 6MB");
  }
  if (!o.cpus.empty()) h.nano_cpus = TRY(ParseCpus(o.cpus));
  if (!o.pids_limit.empty()) {
    // The kernel's pids.max takes at most PID_MAX_LIMIT (2^22); -1 means unlimited.
    h.pids_limit = TRY(ParseInt(o.pids_limit, -1, int64_t{1} << 22, "--pids-limit"));
  }
  for (const std::string& v : o.volumes) h.binds.push_back(TRY(ParseVolume(v)));
  h.readonly_rootfs = o.read_only;
  h.privileged = o.privileged;
  h.auto_remove = o.auto_remove;
  h.init = o.init;
  h.no_pivot = o.no_pivot;
  // Validates the names now rather than at start.
  TRY(EffectiveCapabilities(o.cap_add, o.cap_drop, false));
  h.cap_add = o.cap_add;
  h.cap_drop = o.cap_drop;
  for (const std::string& s : o.security_opt) {
    if (s == "no-new-privileges" || s == "no-new-privileges:true" ||
        s == "no-new-privileges=true") {
      h.no_new_privileges = true;
    } else if (s == "no-new-privileges:false" || s == "no-new-privileges=false") {
      h.no_new_privileges = false;
    } else if (s == "seccomp=unconfined" || s == "seccomp:unconfined") {
      h.seccomp_unconfined = true;
    } else {
      return Error(Errc::kInvalidArgument,
                   "--security-opt " + s +
                       ": shale supports no-new-privileges and seccomp=unconfined");
    }
  }
  for (const std::string& u : o.ulimits) {
    oci::Rlimit r = TRY(ParseUlimit(u));
    std::erase_if(h.ulimits, [&](const oci::Rlimit& x) { return x.type == r.type; });
    h.ulimits.push_back(r);
  }
  return std::make_pair(std::move(c), std::move(h));
}

Result<oci::User> ResolveUserFrom(std::string_view spec, std::string_view passwd,
                                  std::string_view group, std::string* home) {
  oci::User u;
  std::string user(spec.empty() ? "0" : spec), grp;
  bool has_group = false;
  if (size_t colon = spec.find(':'); colon != std::string_view::npos) {
    user = std::string(spec.substr(0, colon));
    grp = std::string(spec.substr(colon + 1));
    has_group = true;
  }
  auto is_num = [](const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  };
  // Ids past 2^31-1 are refused (runc's rule): a uid of 2^32 would wrap to root.
  auto id = [](const std::string& s, const char* what) -> Result<uint32_t> {
    return static_cast<uint32_t>(TRY(ParseUint(s, kMaxId, what)));
  };
  if (is_num(user)) TRY(id(user, "user id"));
  if (has_group && is_num(grp)) TRY(id(grp, "group id"));
  std::string user_name;
  bool found = false;
  for (const std::string& line : Split(passwd, '\n')) {
    std::vector<std::string> f = Split(line, ':');
    if (f.size() < 4 || f[0].empty() || f[0][0] == '#') continue;
    if (!is_num(f[2]) || !is_num(f[3])) continue;
    bool match = f[0] == user;
    if (!match && is_num(user)) {
      auto a = ParseUint(f[2], UINT64_MAX, "uid"), b = ParseUint(user, UINT64_MAX, "uid");
      match = a && b && *a == *b;
    }
    if (!match) continue;
    u.uid = TRY(id(f[2], ("uid of passwd entry " + f[0]).c_str()));
    u.gid = TRY(id(f[3], ("gid of passwd entry " + f[0]).c_str()));
    if (home && f.size() >= 6) *home = f[5];
    user_name = f[0];
    found = true;
    break;
  }
  if (!found) {
    if (!is_num(user))
      return Error(Errc::kNotFound, "unable to find user " + user +
                                        ": no matching entries in passwd file");
    u.uid = TRY(id(user, "user id"));
    u.gid = 0;
    // docker: HOME is /root for root without an entry, else "/".
    if (home) *home = u.uid == 0 ? "/root" : "/";
  }
  if (has_group) {
    bool gfound = false;
    for (const std::string& line : Split(group, '\n')) {
      std::vector<std::string> f = Split(line, ':');
      if (f.size() < 3 || f[0].empty() || f[0][0] == '#' || !is_num(f[2])) continue;
      bool match = f[0] == grp;
      if (!match && is_num(grp)) {
        auto a = ParseUint(f[2], UINT64_MAX, "gid"), b = ParseUint(grp, UINT64_MAX, "gid");
        match = a && b && *a == *b;
      }
      if (!match) continue;
      u.gid = TRY(id(f[2], ("gid of group entry " + f[0]).c_str()));
      gfound = true;
      break;
    }
    if (!gfound) {
      if (!is_num(grp))
        return Error(Errc::kNotFound, "unable to find group " + grp +
                                          ": no matching entries in group file");
      u.gid = TRY(id(grp, "group id"));
    }
  }
  // Supplementary groups: every group that lists the user by name (docker/runc do so).
  if (!user_name.empty()) {
    for (const std::string& line : Split(group, '\n')) {
      std::vector<std::string> f = Split(line, ':');
      if (f.size() < 4 || !is_num(f[2])) continue;
      for (const std::string& m : Split(f[3], ','))
        if (m == user_name) {
          uint32_t g = TRY(id(f[2], ("gid of group entry " + f[0]).c_str()));
          if (g != u.gid &&
              std::find(u.additional_gids.begin(), u.additional_gids.end(), g) ==
                  u.additional_gids.end())
            u.additional_gids.push_back(g);
        }
    }
  }
  return u;
}

Result<oci::User> ResolveUser(const Dir& rootfs, std::string_view spec, std::string* home) {
  // The image's files, read by the host as root: inside the root, never a device or FIFO,
  // and bounded.
  constexpr size_t kMaxUserDb = 16 << 20;
  auto read = [&](const char* rel) -> Result<std::string> {
    auto s = rootfs.ReadRegularFile(rel, kMaxUserDb);
    if (!s && s.error().code() == Errc::kNotFound) return std::string();
    if (!s) return std::move(s).error().Wrap("the image's /" + std::string(rel));
    return s;
  };
  std::string passwd = TRY(read("etc/passwd"));
  std::string group = TRY(read("etc/group"));
  return ResolveUserFrom(spec, passwd, group, home);
}

Result<oci::RuntimeSpec> BuildSpec(const std::string& id, const ContainerConfig& c,
                                   const HostConfig& h, const oci::User& user,
                                   const SpecPaths& paths) {
  oci::RuntimeSpec s;
  s.root.path = paths.rootfs;
  s.root.readonly = h.readonly_rootfs;
  s.hostname = c.hostname;
  oci::Process& p = s.process;
  p.terminal = c.tty;
  p.user = user;
  p.args = ProcessArgs(c);
  if (h.init) {
    if (paths.init_binary.empty())
      return Error(Errc::kNotFound, "--init: shale-init was not found beside the shale binary");
    p.args.insert(p.args.begin(), {"/dev/init", "--"});
  }
  p.env.push_back("HOSTNAME=" + c.hostname);
  if (c.tty) p.env.push_back("TERM=xterm");
  MergeEnv(p.env, c.env);
  // docker: HOME from the user's passwd entry unless the image or -e set it.
  if (std::none_of(p.env.begin(), p.env.end(),
                   [](const std::string& e) { return StartsWith(e, "HOME="); }))
    p.env.push_back("HOME=" + (paths.home.empty() ? std::string("/") : paths.home));
  p.cwd = c.working_dir.empty() ? "/" : c.working_dir;
  std::vector<std::string> caps = TRY(EffectiveCapabilities(h.cap_add, h.cap_drop, h.privileged));
  p.capabilities.bounding = caps;
  p.capabilities.effective = caps;
  p.capabilities.permitted = caps;
  p.rlimits = h.ulimits;
  p.no_new_privileges = h.no_new_privileges;

  std::vector<std::string> sys_opts = {"nosuid", "noexec", "nodev"};
  if (!h.privileged) sys_opts.push_back("ro");
  s.mounts = {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/sys", "sysfs", "sysfs", sys_opts},
      {"/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
  };
  auto bind = [&](const std::string& src, const std::string& dst, bool ro) {
    oci::Mount m{dst, "bind", src, {"rbind", "rprivate"}};
    if (ro) m.options.push_back("ro");
    s.mounts.push_back(std::move(m));
  };
  if (!paths.resolv_conf.empty()) bind(paths.resolv_conf, "/etc/resolv.conf", false);
  if (!paths.hostname.empty()) bind(paths.hostname, "/etc/hostname", false);
  if (!paths.hosts.empty()) bind(paths.hosts, "/etc/hosts", false);
  // On /dev (a tmpfs): nothing is written into the container's layers.
  if (h.init) bind(paths.init_binary, "/dev/init", true);
  for (const Bind& b : h.binds) bind(b.source, b.destination, b.readonly);

  s.linux.namespaces = {{"pid", ""}, {"ipc", ""}, {"uts", ""}, {"mount", ""}};
  if (h.network_mode != "host") s.linux.namespaces.push_back({"network", ""});
  s.linux.cgroups_path = "shale/" + id;
  if (h.memory > 0) s.linux.resources.memory_limit = h.memory;
  if (h.nano_cpus > 0) {
    s.linux.resources.cpu_period = 100000;
    s.linux.resources.cpu_quota = h.nano_cpus / 10000;  // ns of cpu per 100ms period
  }
  if (h.pids_limit != 0) s.linux.resources.pids_limit = h.pids_limit;
  if (!h.privileged) {
    s.linux.masked_paths = oci::DefaultMaskedPaths();
    s.linux.readonly_paths = oci::DefaultReadonlyPaths();
  }
  // Docker's defaults: the default seccomp profile and device allow-list, both lifted by
  // --privileged; seccomp alone by --security-opt seccomp=unconfined.
  if (!h.privileged && !h.seccomp_unconfined) s.linux.seccomp = oci::DefaultSeccomp(caps);
  s.linux.resources.devices =
      h.privileged ? oci::PrivilegedDeviceRules() : oci::DefaultDeviceRules();
  s.annotations["org.shale.container.id"] = id;
  return s;
}

Result<void> CheckUlimits(const std::vector<oci::Rlimit>& rlimits) {
  static const std::pair<const char*, int> kRes[] = {
      {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},   {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},         {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},   {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},     {"RLIMIT_AS", RLIMIT_AS}};
  for (const oci::Rlimit& r : rlimits) {
    for (const auto& [name, res] : kRes) {
      if (r.type != name) continue;
      struct rlimit cur;
      if (getrlimit(res, &cur) != 0) return Error::FromErrno(errno, "getrlimit " + r.type);
      if (cur.rlim_max != RLIM_INFINITY && r.hard > cur.rlim_max) {
        std::string shortname = r.type.substr(7);
        for (char& ch : shortname) ch = static_cast<char>(tolower(ch));
        auto show = [](uint64_t v) {
          return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v);
        };
        return Error(Errc::kInvalidArgument,
                     "ulimit " + shortname + ": hard limit " + show(r.hard) +
                         " exceeds this host's limit " + show(cur.rlim_max) +
                         "; shale cannot raise hard limits");
      }
    }
  }
  return Ok();
}

std::string HostsFile(const std::string& hostname) {
  (void)hostname;
  return "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\n"
         "ff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n";
}

std::string FilterResolvConf(std::string_view host) {
  std::string out;
  for (const std::string& line : Split(host, '\n')) {
    std::string_view t = Trim(line);
    if (StartsWith(t, "nameserver")) {
      std::string_view addr = Trim(t.substr(10));
      if (StartsWith(addr, "127.") || addr == "::1") continue;
    }
    if (line.empty() && (out.empty() || EndsWith(out, "\n\n"))) continue;
    out += line;
    out += '\n';
  }
  while (EndsWith(out, "\n\n")) out.pop_back();
  return out;
}

namespace {
// Two short word lists of our own; docker uses the same shape.
constexpr const char* kAdjectives[] = {
    "brave",   "calm",    "clever",  "eager",   "fervent", "gentle",  "happy",   "jolly",
    "keen",    "lucid",   "merry",   "nifty",   "patient", "quirky",  "serene",  "sharp",
    "stoic",   "tender",  "upbeat",  "vibrant", "wizardly", "zealous", "bold",   "cool",
    "dazzling", "elegant", "festive", "friendly", "gifted", "hopeful", "inspired", "modest"};
constexpr const char* kSurnames[] = {
    "noether",  "curie",    "turing",  "lovelace", "hopper",  "dijkstra", "knuth",
    "ritchie",  "thompson", "shannon", "hamilton", "meitner", "franklin", "goodall",
    "euler",    "gauss",    "kepler",  "galileo",  "darwin",  "tesla",    "faraday",
    "maxwell",  "bohr",     "fermi",   "pasteur",  "hypatia", "ramanujan", "banach",
    "lamarr",   "wozniak",  "torvalds", "mccarthy"};
}  // namespace

std::string RandomName() {
  std::random_device rd;
  std::uniform_int_distribution<size_t> a(0, std::size(kAdjectives) - 1);
  std::uniform_int_distribution<size_t> b(0, std::size(kSurnames) - 1);
  return std::string(kAdjectives[a(rd)]) + "_" + kSurnames[b(rd)];
}

std::string NetworkContainer(std::string_view mode) {
  return StartsWith(mode, "container:") ? std::string(mode.substr(10)) : "";
}

bool UsesCni(std::string_view mode) {
  return mode != "host" && mode != "none" && !StartsWith(mode, "container:");
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128 || !isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

// --- JSON ---

json ToJson(const ContainerConfig& c) {
  json j;
  j["Hostname"] = c.hostname;
  j["User"] = c.user;
  j["Env"] = c.env;
  j["Cmd"] = c.cmd.empty() ? json(nullptr) : json(c.cmd);
  j["Entrypoint"] = c.entrypoint.empty() ? json(nullptr) : json(c.entrypoint);
  j["WorkingDir"] = c.working_dir;
  j["Image"] = c.image;
  j["Tty"] = c.tty;
  j["OpenStdin"] = c.open_stdin;
  j["AttachStdin"] = c.open_stdin;
  j["AttachStdout"] = true;
  j["AttachStderr"] = true;
  j["Labels"] = c.labels;
  if (!c.stop_signal.empty()) j["StopSignal"] = c.stop_signal;
  return j;
}

Result<ContainerConfig> ConfigFromJson(const json& j) {
  try {
    ContainerConfig c;
    c.hostname = j.value("Hostname", "");
    c.user = j.value("User", "");
    c.env = StringList(j.value("Env", json()));
    c.cmd = StringList(j.value("Cmd", json()));
    c.entrypoint = StringList(j.value("Entrypoint", json()));
    c.working_dir = j.value("WorkingDir", "");
    c.image = j.value("Image", "");
    c.tty = j.value("Tty", false);
    c.open_stdin = j.value("OpenStdin", false);
    c.stop_signal = j.value("StopSignal", "");
    if (auto it = j.find("Labels"); it != j.end() && it->is_object()) c.labels = *it;
    return c;
  } catch (const json::exception& e) {
    return Error(Errc::kCorrupt, std::string("container Config: ") + e.what());
  }
}

json ToJson(const HostConfig& h) {
  json j;
  j["Memory"] = h.memory;
  j["NanoCpus"] = h.nano_cpus;
  j["PidsLimit"] = h.pids_limit ? json(h.pids_limit) : json(nullptr);
  json binds = json::array();
  for (const Bind& b : h.binds)
    binds.push_back(b.source + ":" + b.destination + (b.readonly ? ":ro" : ""));
  j["Binds"] = h.binds.empty() ? json(nullptr) : binds;
  j["NetworkMode"] = h.network_mode;
  json pb = json::object();
  for (const network::PortMapping& m : h.port_bindings)
    pb[network::PortKey(m)].push_back(
        {{"HostIp", m.host_ip}, {"HostPort", m.host_port ? std::to_string(m.host_port) : ""}});
  j["PortBindings"] = pb;
  j["PublishAllPorts"] = h.publish_all;
  j["NetworkAliases"] = h.network_aliases.empty() ? json(nullptr) : json(h.network_aliases);
  j["ReadonlyRootfs"] = h.readonly_rootfs;
  j["Privileged"] = h.privileged;
  j["AutoRemove"] = h.auto_remove;
  j["Init"] = h.init;
  j["CapAdd"] = h.cap_add.empty() ? json(nullptr) : json(h.cap_add);
  j["CapDrop"] = h.cap_drop.empty() ? json(nullptr) : json(h.cap_drop);
  json security_opt = json::array();
  if (h.no_new_privileges) security_opt.push_back("no-new-privileges");
  if (h.seccomp_unconfined) security_opt.push_back("seccomp=unconfined");
  j["SecurityOpt"] = security_opt.empty() ? json(nullptr) : security_opt;
  json ul = json::array();
  for (const oci::Rlimit& r : h.ulimits) {
    std::string name = r.type.substr(7);
    for (char& ch : name) ch = static_cast<char>(tolower(ch));
    ul.push_back({{"Name", name},
                  {"Soft", r.soft == RLIM_INFINITY ? -1 : static_cast<int64_t>(r.soft)},
                  {"Hard", r.hard == RLIM_INFINITY ? -1 : static_cast<int64_t>(r.hard)}});
  }
  j["Ulimits"] = h.ulimits.empty() ? json(nullptr) : ul;
  j["NoPivot"] = h.no_pivot;
  return j;
}

Result<HostConfig> HostConfigFromJson(const json& j) {
  try {
    HostConfig h;
    h.memory = j.value("Memory", int64_t{0});
    h.nano_cpus = j.value("NanoCpus", int64_t{0});
    if (j.contains("PidsLimit") && j["PidsLimit"].is_number())
      h.pids_limit = j["PidsLimit"].get<int64_t>();
    for (const std::string& b : StringList(j.value("Binds", json())))
      h.binds.push_back(TRY(ParseVolume(b)));
    h.network_mode = j.value("NetworkMode", "none");
    h.network_aliases = StringList(j.value("NetworkAliases", json()));
    h.publish_all = j.value("PublishAllPorts", false);
    if (auto it = j.find("PortBindings"); it != j.end() && it->is_object()) {
      for (auto& [key, list] : it->items()) {
        auto ms = TRY(network::ParsePublish(key));
        if (ms.size() != 1 || !list.is_array()) continue;
        for (const json& b : list) {
          network::PortMapping m = ms[0];
          m.host_ip = b.value("HostIp", "");
          std::string hp = b.value("HostPort", "");
          m.host_port = hp.empty() ? 0 : static_cast<int>(TRY(ParseInt(hp, 1, 65535, "HostPort")));
          h.port_bindings.push_back(std::move(m));
        }
      }
    }
    h.readonly_rootfs = j.value("ReadonlyRootfs", false);
    h.privileged = j.value("Privileged", false);
    h.auto_remove = j.value("AutoRemove", false);
    h.init = j.value("Init", false);
    h.no_pivot = j.value("NoPivot", false);
    h.cap_add = StringList(j.value("CapAdd", json()));
    h.cap_drop = StringList(j.value("CapDrop", json()));
    for (const std::string& opt : StringList(j.value("SecurityOpt", json()))) {
      if (opt == "no-new-privileges") h.no_new_privileges = true;
      if (opt == "seccomp=unconfined") h.seccomp_unconfined = true;
    }
    if (auto it = j.find("Ulimits"); it != j.end() && it->is_array()) {
      for (const json& u : *it) {
        oci::Rlimit r;
        std::string name = u.value("Name", "");
        r.type = "RLIMIT_" + Upper(name);
        int64_t soft = u.value("Soft", int64_t{0}), hard = u.value("Hard", int64_t{0});
        r.soft = soft < 0 ? RLIM_INFINITY : static_cast<uint64_t>(soft);
        r.hard = hard < 0 ? RLIM_INFINITY : static_cast<uint64_t>(hard);
        h.ulimits.push_back(r);
      }
    }
    return h;
  } catch (const json::exception& e) {
    return Error(Errc::kCorrupt, std::string("container HostConfig: ") + e.what());
  }
}

}  // namespace shale::container
