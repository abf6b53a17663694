// shale-runc's command table and global flags (runc's).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "runc/runc.h"
#include "runtime/channel.h"
#include "runtime/rootless.h"
#include "runtime/state.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::runc {

void ReportError(const Globals& g, const Error& e) {
  fprintf(stderr, "shale-runc: %s\n", e.message().c_str());
  if (g.log.empty()) return;
  UniqueFd f(::open(g.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!f) return;
  std::string line;
  if (g.log_format == "json") {
    line = nlohmann::json{{"level", "error"}, {"msg", e.message()}, {"time", runtime::NowRfc3339()}}
               .dump() + "\n";
  } else {
    line = runtime::NowRfc3339() + " error: " + e.message() + "\n";
  }
  (void)WriteAll(f.get(), line, g.log);
}

Result<std::string> DefaultRoot(uid_t euid, const char* xdg) {
  if (euid == 0) return std::string("/run/shale-runc");
  if (xdg && xdg[0] == '/') return std::string(xdg) + "/shale-runc";
  return Error(Errc::kInvalidArgument,
               "rootless: the default --root is $XDG_RUNTIME_DIR/shale-runc and XDG_RUNTIME_DIR " +
                   std::string(xdg && *xdg ? "is not an absolute path" : "is not set") +
                   ": pass --root DIR (a directory this user may write)");
}

Result<std::string> StateDir(const Globals& g, const std::string& id) {
  if (g.root.empty()) return DefaultRoot(geteuid(), getenv("XDG_RUNTIME_DIR")).error();
  bool ok = !id.empty() && id.size() <= 1024 && id != "." && id != "..";
  for (char c : id)
    ok &= (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' || c == '.');
  if (!ok)
    return Error(Errc::kInvalidArgument, "invalid container id \"" + id +
                                             "\": use letters, digits and _ + - . only");
  return g.root + "/" + id;
}

std::string AbsPath(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char* cwd = getcwd(nullptr, 0);
  std::string base = cwd ? cwd : "/";
  free(cwd);
  if (p.empty() || p == ".") return base;
  return base + "/" + p;
}

Result<oci::RuntimeSpec> LoadBundleSpec(const std::string& bundle) {
  std::string path = bundle + "/config.json";
  std::string data = TRY(ReadRegularFile(path, 16 << 20).Wrap("read the bundle's config.json"));
  nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(Errc::kInvalidArgument, path + ": not valid JSON");
  oci::RuntimeSpec spec = TRY(oci::RuntimeSpecFromJson(j).Wrap(path));
  if (spec.root.path.empty())
    return Error(Errc::kInvalidArgument, path + ": root.path is required");
  if (spec.root.path[0] != '/') spec.root.path = bundle + "/" + spec.root.path;
  return spec;
}

Result<int> ParseSignal(const std::string& s) {
  if (!s.empty() && isdigit(static_cast<unsigned char>(s[0]))) {
    uint64_t n = TRY(ParseUint(s, 64, "signal"));
    if (n == 0) return Error(Errc::kInvalidArgument, "signal 0 is not a signal");
    return static_cast<int>(n);
  }
  std::string name = s;
  for (char& c : name) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (StartsWith(name, "SIG")) name = name.substr(3);
  for (int i = 1; i < NSIG; ++i) {
    const char* abbrev = sigabbrev_np(i);
    if (abbrev && name == abbrev) return i;
  }
  return Error(Errc::kInvalidArgument, "unknown signal \"" + s + "\"");
}

Result<void> WritePidFile(const std::string& path, pid_t pid) {
  return WriteFileAtomic(AbsPath(path), std::to_string(pid), 0644).Wrap("write the pid file");
}

Result<void> SendConsole(const std::string& path, int fd) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error::FromErrno(errno, "socket for --console-socket");
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return Error(Errc::kInvalidArgument, "--console-socket " + path + ": path too long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0)
    return Error::FromErrno(errno, "connect to --console-socket " + path);
  static const char kName[] = "/dev/ptmx";  // runc sends the terminal's name as the payload
  return runtime::SendFdOn(sock.get(), fd, kName, sizeof(kName) - 1, "to --console-socket " + path);
}

int ListenFds() {
  const char* v = getenv("LISTEN_FDS");
  if (!v || !*v) return 0;
  auto n = ParseUint(v, 1024, "LISTEN_FDS");
  return n ? static_cast<int>(*n) : 0;
}

int Main(int argc, char** argv) {
  Globals g;
  CLI::App app{"shale-runc: shale's OCI runtime with runc's command line (for podman, "
               "containerd and Kubernetes)",
               "shale-runc"};
  app.require_subcommand(1);
  CLI::Option* root_opt =
      app.add_option("--root", g.root, "Directory for the containers' state (default "
                                       "/run/shale-runc; $XDG_RUNTIME_DIR/shale-runc when not "
                                       "root)");
  app.add_option("--log", g.log, "Also write errors to this file");
  app.add_option("--log-format", g.log_format, "Format of --log")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--debug", g.debug, "Print debug messages");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "Refused: shale-runc manages cgroups itself (cgroupfs)");
  app.add_option("--rootless", g.rootless,
                 "Run as an unprivileged user: true, false or auto (auto: euid is not 0, or "
                 "root of a user namespace that does not map every id)")
      ->check(CLI::IsMember({"true", "false", "auto"}));
  app.set_version_flag("--version,-v", std::string("shale-runc version ") + kVersion +
                                           "\nspec: " + kSpecVersion);
  RegisterLifecycle(app, g);
  RegisterExec(app, g);
  RegisterSpec(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (g.debug) SetLogLevel(LogLevel::kDebug);
  // /proc/self/uid_map is read only when it decides (auto, as root): not on root's usual path
  // through run/create/start.
  g.rootless_on = g.rootless == "true" ||
                  (g.rootless == "auto" &&
                   (geteuid() != 0 || runtime::DetectRootless(
                                          0, ReadFile("/proc/self/uid_map").value_or(""))));
  if (!root_opt->count()) {
    // An unset XDG_RUNTIME_DIR is reported by the commands that need the root (StateDir,
    // list), not by spec, features or --help.
    g.root = DefaultRoot(geteuid(), getenv("XDG_RUNTIME_DIR")).value_or("");
  }
  if (!g.root.empty()) g.root = AbsPath(g.root);
  if (g.systemd_cgroup) {
    ReportError(g, Error(Errc::kUnsupported,
                         "--systemd-cgroup: shale-runc has no systemd cgroup driver; configure "
                         "the client for cgroupfs (containerd: SystemdCgroup = false; podman: "
                         "cgroup_manager = \"cgroupfs\")"));
    return 1;
  }
  if (geteuid() != 0 && g.rootless == "false") {
    ReportError(g, Error(Errc::kPermission,
                         "--rootless false: shale-runc runs as uid " + std::to_string(geteuid()) +
                             ", not root; run it as root, or with --rootless true or auto"));
    return 1;
  }
  if (!g.action) return 0;
  auto r = g.action();
  if (!r) {
    ReportError(g, r.error());
    return 1;
  }
  return *r;
}

}  // namespace shale::runc
