// Containers without a daemon: records on disk, a per-container monitor process, logs, exec,
// commit/diff/export.
//
// On disk (under --root):
//   containers/<id>/config.v2.json   the record: Id, Name, Created, Image, Config, HostConfig
//   containers/<id>/state.json       Status, Pid, monitor pid + its start time, ExitCode, ...
//   containers/<id>/config.json      the OCI runtime spec of the last start (exec reuses it)
//   containers/<id>/{hostname,hosts,resolv.conf}  bound over the init layer's placeholders
//   containers/<id>/<id>-json.log    Docker's json-file log
//   containers/<id>/lock             flock for state changes
//   containers/.names/<name> -> <id> name reservations (symlinkat: atomic, EEXIST = taken)
//   overlay2/<id>-init, overlay2/<id>  the init layer and the read-write layer
//
// The monitor (conmon's role): whoever starts a container supervises it until it exits:
// `run` in the foreground is its own monitor; `run -d` and `start` fork a detached monitor
// (double fork, setsid) that reports "started" or the start error over a pipe. The monitor
// copies the container's output to the log, records the exit (code, OOM, time), removes the
// cgroup and unmounts the rootfs (and with --rm removes the container). If a monitor dies,
// the container dies with it (PR_SET_PDEATHSIG) and the next command that reads the
// container notices (monitor pid + start time from /proc/<pid>/stat) and records exit 137.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "container/seccomp_cache.h"
#include "container/spec.h"
#include "image/image_store.h"
#include "layer/layer.h"
#include "network/network.h"
#include "runtime/runtime.h"
#include "util/error.h"

namespace shale::container {

struct State {
  std::string status = "created";  // created | running | paused | exited
  pid_t pid = 0;                    // the container's init, in our pid namespace
  pid_t monitor_pid = 0;
  uint64_t monitor_start = 0;       // starttime of the monitor in /proc/<pid>/stat
  int exit_code = 0;
  bool oom_killed = false;
  std::string error;
  int64_t started_ns = 0, finished_ns = 0;
};

struct Record {
  std::string id, name;   // name without the leading "/"
  int64_t created_ns = 0;
  std::string image_id;   // "sha256:…"
  ContainerConfig config;
  HostConfig host;
};

struct Summary {
  Record record;
  State state;
};

struct ExecRequest {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string workdir, user;
  bool interactive = false, tty = false;
};

struct CommitRequest {
  std::string message, author, tag;
  std::vector<std::string> changes;
  bool pause = true;
  bool reproducible = false;
};

// A container that a caller runs as one step of its own work (the builder's RUN and COPY):
// typed values the caller has decided, not CLI strings.
struct StepConfig {
  std::string image;                // image id ("sha256:...") or reference
  std::vector<std::string> args;    // the argv to run, as is: the image's Entrypoint is unused
  std::vector<std::string> env;     // K=V each, set over the image's Env
  std::string workdir, user;        // "" = the image's
  std::string network = "bridge";   // bridge | host | none (as run's --network)
  std::string name;                 // "" = a random name
};

// Where a step's output goes, and what stops it.
struct StepIo {
  int out = 1, err = 2;             // the process's stdout/stderr (stdin is /dev/null)
  // Readable (a signalfd of SIGINT/SIGTERM): the process is killed and RunStep returns
  // kCancelled. -1: none.
  int cancel_fd = -1;
};

class Manager {
 public:
  // Opens the image store under `root` too. Takes no lock.
  static Result<std::unique_ptr<Manager>> Open(const std::string& root);

  image::ImageStore& images() { return *images_; }
  network::Networks& networks() { return networks_; }

  // Creates the container (init + rw layers, files) and returns its id. Takes the store lock.
  Result<std::string> Create(const CreateOptions& opts);
  // Starts `id` under a monitor child with stdio passed through (a pty with -t) and returns
  // its exit status (125/126/127 for start failures, as docker). The monitor, not this
  // process, owns the container: if the caller dies (even SIGKILL) it keeps running, its
  // output goes to the log only, and the monitor records its exit (and removes it with --rm).
  // Signals sent to the caller are forwarded to the container.
  int RunAttached(const std::string& id);
  // Creates a container for a step (as Create, with the step's argv, env, workdir and user).
  // kNotFound if the image is missing. Takes the store lock.
  Result<std::string> CreateStep(const StepConfig& cfg);
  // Starts `id` with this process as its monitor, its output written to io.out/io.err, and
  // waits for it: returns its exit status (code, or 128+signal). Start failures are errors
  // (kNotFound: the executable is missing; kPermission: it cannot be executed), never
  // printed. The container dies with this process (even SIGKILL); the next command reading
  // it records exit 137. The caller removes it (Remove) when done.
  Result<int> RunStep(const std::string& id, const StepIo& io);
  // Starts `id` under a detached monitor; returns once it runs (or with its start error).
  Result<void> StartDetached(const std::string& id);

  // Name, full id or unique id prefix -> id. kNotFound "No such container: X".
  Result<std::string> Resolve(std::string_view ref);
  Result<Record> Load(const std::string& id);
  // Reads the state; a running container whose monitor is gone is marked exited (137).
  Result<State> GetState(const std::string& id);
  Result<std::vector<Summary>> List(bool all);

  Result<void> Kill(const std::string& id, int sig);
  Result<void> Stop(const std::string& id, int timeout_s);
  // Blocks until the container is not running; returns its exit code.
  Result<int> Wait(const std::string& id);
  // kBusy for a running container unless force (then it is killed first).
  Result<void> Remove(const std::string& id, bool force);
  // Exit status of the process; 126/127 when it cannot be run.
  Result<int> Exec(const std::string& id, const ExecRequest& req);
  Result<void> Logs(const std::string& id, bool follow, int64_t tail);
  Result<nlohmann::json> Inspect(const std::string& id);

  Result<image::Image> Commit(const std::string& id, const CommitRequest& req);
  Result<std::vector<layer::Change>> Diff(const std::string& id);
  Result<void> Export(const std::string& id, int out_fd);

  std::string ContainerDir(const std::string& id) const;

 private:
  Manager(std::string root, std::unique_ptr<image::ImageStore> images)
      : root_(root), images_(std::move(images)), networks_(root), seccomp_cache_(root + "/seccomp") {}
  // The network part of Prepare: joins (container:) or attaches (bridge, user networks) and
  // sets the spec's network namespace path. The published ports stay held in held_ports_,
  // which the monitor inherits across fork.
  Result<void> PrepareNetwork(const Record& r, oci::RuntimeSpec& spec);
  // The attach of PrepareNetwork for a CNI mode (bridge, a user network): starts the
  // background setup, holds its ports and remembers the netns it makes. Create calls it for
  // `run` (CreateOptions::start_now), so that Prepare finds it begun.
  Result<void> BeginNetwork(const Record& r);
  // Undoes a BeginNetwork whose container will not start now (a failed Create or Prepare).
  void AbandonNetwork(const std::string& id);
  // Waits for the network setup Prepare left running (pending_network_); the container must
  // not start before it succeeded. Ok when nothing is pending.
  Result<void> AwaitNetwork();
  // runtime::Create, AwaitNetwork (the CNI ADDs ran meanwhile), Start.
  Result<runtime::Started> CreateAndStart(const Record& r, const oci::RuntimeSpec& spec,
                                          const runtime::RunOptions& ro);
  // The network part of the record for inspect: NetworkSettings.
  nlohmann::json NetworkSettings(const Record& r);
  // Mounts the rw layer and writes config.json. REQUIRES the store lock.
  Result<oci::RuntimeSpec> Prepare(const Record& r);
  Result<void> SaveState(const std::string& id, const State& s);
  // Records `id` as running with init `pid` and this process as its monitor (under the
  // container's lock).
  Result<void> RecordRunning(const std::string& id, pid_t pid);
  Result<State> ReadState(const std::string& id);
  // Removes everything of `id` (cgroup, mount, layers, ref, name, dir). Missing parts are
  // fine. REQUIRES the store lock; the container must not run.
  Result<void> Destroy(const std::string& id);
  // After the container's init exited: records the exit, unmounts (or destroys with --rm).
  void Finish(const Record& r, int status, bool oom);
  // RunAttached's fork: the monitor as our child, its exit status returned.
  int SuperviseFromChild(const Record& r, const oci::RuntimeSpec& spec);
  // `client_fd`: when attached, the read end of a pipe whose writer is the attached caller;
  // its EOF means the caller is gone, so output stops being echoed.
  int Supervise(const Record& r, const oci::RuntimeSpec& spec, bool attached, int report_fd,
                int client_fd = -1);
  Result<void> WaitNotRunning(const std::string& id, int64_t timeout_ms, bool* timed_out);

  std::string root_;
  std::unique_ptr<image::ImageStore> images_;
  network::Networks networks_;
  SeccompCacheDir seccomp_cache_;  // <root>/seccomp
  std::vector<UniqueFd> held_ports_;
  network::PendingOp pending_network_;  // inherited by the monitor like held_ports_
  std::string begun_network_id_;        // the container BeginNetwork attaches, until Prepare
  std::string begun_netns_;             // takes it over; and the netns it makes
  // The monitor starts releasing the network as soon as the init is reaped (StartRelease);
  // Finish and Destroy wait for it (TakeRelease), or start it if nobody did.
  void StartNetworkRelease(const std::string& id);
  network::PendingOp TakeNetworkRelease(const std::string& id);
  std::string releasing_id_;
  network::PendingOp releasing_network_;
};

// Exit status for a failed start: 127 not found, 126 cannot execute, 125 otherwise.
int StartFailureStatus(const Error& e);
// "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
std::string StatusText(const State& s, int64_t now_ns);
// docker's units.HumanDuration.
std::string HumanDuration(int64_t seconds);
// Start time (clock ticks since boot) of pid from /proc/<pid>/stat; 0 if it is gone.
uint64_t ProcessStartTime(pid_t pid);

}  // namespace shale::container
