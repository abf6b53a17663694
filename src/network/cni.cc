#include "network/cni.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "util/fd.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

extern char** environ;

namespace shale::network {
namespace {

using nlohmann::json;

// The plugin's environment: ours without any CNI_* (a caller's CNI_ARGS must not leak into
// a plugin it was not meant for), plus the invocation's.
std::vector<std::string> PluginEnv(const std::string& command, const CniInvocation& inv) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (!StartsWith(*e, "CNI_")) env.emplace_back(*e);
  env.push_back("CNI_COMMAND=" + command);
  env.push_back("CNI_CONTAINERID=" + inv.container_id);
  env.push_back("CNI_NETNS=" + inv.netns);
  env.push_back("CNI_IFNAME=" + inv.ifname);
  env.push_back("CNI_PATH=" + Join(PluginDirs(), ":"));
  bool has_path = false;
  for (const std::string& e : env) has_path |= StartsWith(e, "PATH=");
  // bridge and portmap run iptables; a monitor started from a bare environment has no PATH.
  if (!has_path) env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  return env;
}

struct Output {
  std::string out, err;
  int status = 0;
};

Result<Output> Spawn(const std::string& path, const std::string& input,
                     const std::vector<std::string>& env) {
  int in[2], out[2], err[2];
  // stdin is a socket so that writing to a plugin that quit early gives EPIPE, not SIGPIPE
  // (send's MSG_NOSIGNAL); plugins read it as any stdin.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    return Error::FromErrno(errno, "socketpair for " + path);
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe for " + path);
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe for " + path);
  UniqueFd err_r(err[0]), err_w(err[1]);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = fork();
  if (pid < 0) return Error::FromErrno(errno, "fork for " + path);
  if (pid == 0) {
    // The monitor ignores SIGPIPE and blocks the signals it forwards; neither may reach a
    // plugin (an ignored disposition survives execve).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in_r.get(), 0) < 0 || dup2(out_w.get(), 1) < 0 || dup2(err_w.get(), 2) < 0)
      _exit(127);
    execve(path.c_str(), argv, envp.data());
    _exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  // The config is a few KB, below a pipe's buffer, but the plugin may answer before reading
  // all of it: write while reading.
  Output o;
  size_t written = 0;
  int fds_open = 2;
  if (input.empty()) in_w.reset();
  while (fds_open > 0 || in_w) {
    struct pollfd p[3];
    int n = 0;
    p[n++] = {out_r ? out_r.get() : -1, POLLIN, 0};
    p[n++] = {err_r ? err_r.get() : -1, POLLIN, 0};
    p[n++] = {in_w ? in_w.get() : -1, POLLOUT, 0};
    if (poll(p, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buf[8192];
    for (int i = 0; i < 2; ++i) {
      if (!p[i].revents) continue;
      UniqueFd& fd = i == 0 ? out_r : err_r;
      ssize_t r = read(fd.get(), buf, sizeof(buf));
      if (r > 0) {
        (i == 0 ? o.out : o.err).append(buf, r);
      } else if (r == 0 || errno != EINTR) {
        fd.reset();
        --fds_open;
      }
    }
    if (in_w && p[2].revents) {
      ssize_t w = send(in_w.get(), input.data() + written, input.size() - written,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) written += w;
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_w.reset();
    }
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return Error::FromErrno(errno, "waitpid " + path);
  }
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return o;
}

// Plugins of a list, in order.
Result<std::vector<json>> Plugins(const json& conflist) {
  auto it = conflist.find("plugins");
  if (it == conflist.end() || !it->is_array() || it->empty())
    return Error(Errc::kCorrupt, "network config " + conflist.value("name", std::string("?")) +
                                     ": no \"plugins\" list");
  return it->get<std::vector<json>>();
}

}  // namespace

std::vector<std::string> PluginDirs() {
  std::vector<std::string> dirs;
  if (const char* p = getenv("CNI_PATH"); p && *p)
    for (const std::string& d : Split(p, ':'))
      if (!d.empty()) dirs.push_back(d);
  for (const char* d : {"/usr/lib/cni", "/opt/cni/bin"}) dirs.emplace_back(d);
  return dirs;
}

Result<std::string> FindPlugin(const std::string& type) {
  if (type.empty() || type.find('/') != std::string::npos || type[0] == '.')
    return Error(Errc::kInvalidArgument, "CNI plugin type \"" + type + "\" is not a plain name");
  std::vector<std::string> dirs = PluginDirs();
  for (const std::string& d : dirs) {
    std::string p = d + "/" + type;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return Error(Errc::kNotFound, "CNI plugin \"" + type + "\" not found in " + Join(dirs, ":") +
                                    " (install containernetworking-plugins)");
}

json PluginConfig(const json& conflist, const json& plugin, const json& runtime_config,
                  const json& prev_result) {
  json c = plugin;
  c["name"] = conflist.value("name", "");
  c["cniVersion"] = conflist.value("cniVersion", "1.0.0");
  // CNI conventions: runtimeConfig carries only what the plugin asks for in "capabilities".
  json rc = json::object();
  if (auto caps = plugin.find("capabilities"); caps != plugin.end() && caps->is_object())
    for (auto& [cap, on] : caps->items())
      if (on.is_boolean() && on.get<bool>() && runtime_config.contains(cap))
        rc[cap] = runtime_config[cap];
  c.erase("capabilities");
  if (!rc.empty()) c["runtimeConfig"] = rc;
  if (!prev_result.is_null()) c["prevResult"] = prev_result;
  return c;
}

Result<json> ExecPlugin(const std::string& command, const json& config,
                        const CniInvocation& inv) {
  std::string type = config.value("type", "");
  std::string what = "CNI plugin " + type + " " + command + " (network " +
                     config.value("name", std::string("?")) + ")";
  std::string path = TRY(FindPlugin(type).Wrap(what));
  auto t0 = std::chrono::steady_clock::now();
  Output o = TRY(Spawn(path, config.dump(), PluginEnv(command, inv)).Wrap(what));
  LogDebug(what + " " + inv.ifname + ": " +
           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - t0).count() / 1000.0) + " ms");
  json answer = nullptr;
  if (!Trim(o.out).empty()) {
    answer = json::parse(o.out, nullptr, false);
    if (answer.is_discarded())
      return Error(Errc::kIo, what + ": answered with invalid JSON: " + std::string(Trim(o.out)));
  }
  if (o.status != 0) {
    std::string msg = answer.is_object() ? answer.value("msg", "") : "";
    std::string details = answer.is_object() ? answer.value("details", "") : "";
    if (msg.empty()) msg = std::string(Trim(o.err));
    if (msg.empty()) msg = "exited with status " + std::to_string(o.status);
    if (!details.empty() && details != msg) msg += " (" + details + ")";
    return Error(Errc::kIo, what + ": " + msg);
  }
  return answer;
}

Result<json> AddList(const json& conflist, const CniInvocation& inv) {
  json prev = nullptr;
  for (const json& p : TRY(Plugins(conflist))) {
    json r = TRY(ExecPlugin("ADD", PluginConfig(conflist, p, inv.runtime_config, prev), inv));
    if (!r.is_null()) prev = std::move(r);
  }
  return prev;
}

Result<void> DelList(const json& conflist, const json& cached_result, const CniInvocation& inv) {
  std::vector<json> plugins = TRY(Plugins(conflist));
  Result<void> first = Ok();
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    auto r = ExecPlugin("DEL", PluginConfig(conflist, *it, inv.runtime_config, cached_result),
                        inv);
    if (!r && first) first = std::move(r).error();
  }
  return first;
}

Result<void> CheckList(const json& conflist, const json& cached_result,
                       const CniInvocation& inv) {
  for (const json& p : TRY(Plugins(conflist)))
    TRY(ExecPlugin("CHECK", PluginConfig(conflist, p, inv.runtime_config, cached_result), inv));
  return Ok();
}

}  // namespace shale::network
