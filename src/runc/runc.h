// shale-runc: the runtime under runc's command line, for podman (conmon), containerd (the
// io.containerd.runc.v2 shim) and Kubernetes. One small file per group of verbs over
// src/runtime; this header holds what they share.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runc {

inline constexpr const char* kVersion = "0.1.0";
inline constexpr const char* kSpecVersion = "1.1.0";

struct Globals {
  std::string root = "/run/shale-runc";
  std::string log;                 // --log FILE: errors go there too (containerd reads it)
  std::string log_format = "text"; // text | json
  bool debug = false;
  bool systemd_cgroup = false;
  std::string rootless = "auto";  // --rootless true|false|auto
  bool rootless_on = false;        // what --rootless came to (DetectRootless for auto)
  std::function<Result<int>()> action;  // the chosen verb; its value is the exit status
};

// Writes an error to stderr and, with --log, to the log file in --log-format.
void ReportError(const Globals& g, const Error& e);

// The --root default for `euid` (runc's rule): /run/shale-runc for root, else
// $XDG_RUNTIME_DIR/shale-runc (`xdg`, the variable's value); kInvalidArgument telling to pass
// --root when it is unset or not absolute.
Result<std::string> DefaultRoot(uid_t euid, const char* xdg);

// <root>/<id>, after checking that `id` is a plain name (runc's rule: no '/', not "." or
// "..", at most 1024 of [A-Za-z0-9_+.-]).
Result<std::string> StateDir(const Globals& g, const std::string& id);
// The bundle's config.json, decoded, with root.path made absolute against the bundle.
Result<oci::RuntimeSpec> LoadBundleSpec(const std::string& bundle);
std::string AbsPath(const std::string& p);
// "KILL", "SIGKILL", "9" -> 9. kInvalidArgument otherwise.
Result<int> ParseSignal(const std::string& s);
// Writes `pid` to `path` atomically (runc's --pid-file).
Result<void> WritePidFile(const std::string& path, pid_t pid);
// Connects to the unix socket at `path` and sends `fd` over it (SCM_RIGHTS), as runc does
// with a terminal's master for --console-socket.
Result<void> SendConsole(const std::string& path, int fd);
// LISTEN_FDS from the environment (systemd socket activation): that many fds from 3 pass
// into the container, which gets LISTEN_FDS and LISTEN_PID=1. 0 when unset.
int ListenFds();

void RegisterLifecycle(CLI::App& app, Globals& g);  // create, run, start, state, kill, delete,
                                                    // pause, resume, ps, list, update
void RegisterExec(CLI::App& app, Globals& g);
void RegisterSpec(CLI::App& app, Globals& g);       // spec, features

int Main(int argc, char** argv);

}  // namespace shale::runc
