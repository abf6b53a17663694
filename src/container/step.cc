// Containers run as a step of the caller's own work (the builder's RUN): typed options in,
// an exit status out, output to the caller's fds, nothing printed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "container/container.h"
#include "runtime/runtime.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::container {

Result<std::string> Manager::CreateStep(const StepConfig& cfg) {
  if (cfg.args.empty()) return Error(Errc::kInvalidArgument, "a step needs a command to run");
  CreateOptions o;
  o.image = cfg.image;
  // The argv is final: no image Entrypoint in front of it (docker's builder does the same).
  o.entrypoint = "";
  o.cmd = cfg.args;
  for (const std::string& e : cfg.env)
    // A bare "K" would be looked up in our own environment, which a step must not see.
    o.env.push_back(e.find('=') == std::string::npos ? e + "=" : e);
  o.workdir = cfg.workdir;
  o.user = cfg.user;
  o.network = cfg.network;
  o.name = cfg.name;
  return Create(o);
}

Result<void> Manager::RecordRunning(const std::string& id, pid_t pid) {
  auto lock = FileLock::Acquire(ContainerDir(id) + "/lock", FileLock::Mode::kExclusive);
  State st;
  st.status = "running";
  st.pid = pid;
  st.monitor_pid = getpid();
  st.monitor_start = ProcessStartTime(st.monitor_pid);
  st.started_ns = NowUnixNanos();
  return SaveState(id, st);
}

Result<int> Manager::RunStep(const std::string& id, const StepIo& io) {
  Record r = TRY(Load(id));
  State s = TRY(GetState(id));
  if (s.status == "running" || s.status == "paused")
    return Error(Errc::kInvalidArgument, "container " + id + " is already running");
  oci::RuntimeSpec spec;
  {
    FileLock lock = TRY(images_->Lock(FileLock::Mode::kExclusive));
    spec = TRY(Prepare(r));
  }
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return Error::FromErrno(errno, "open /dev/null");
  runtime::RunOptions ro;
  ro.container_id = id;
  ro.no_pivot = r.host.no_pivot;
  ro.die_with_parent = true;
  ro.seccomp_cache = &seccomp_cache_;
  ro.stdio.in = devnull.get();
  ro.stdio.out = io.out;
  ro.stdio.err = io.err;
  spec.process.terminal = false;
  auto started = CreateAndStart(r, spec, ro);
  if (!started) {
    Error e = std::move(started).error();
    Finish(r, StartFailureStatus(e), false);
    return e;
  }
  // This process is the monitor: if it dies, the container dies (PDEATHSIG) and the next
  // reader of the state sees a dead monitor and records the exit.
  TRY(RecordRunning(id, started->pid));
  bool cancelled = false;
  for (;;) {
    struct pollfd p[2] = {{started->pidfd.get(), POLLIN, 0}, {io.cancel_fd, POLLIN, 0}};
    int n = poll(p, io.cancel_fd >= 0 ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents) break;
    if (io.cancel_fd >= 0 && p[1].revents) {
      cancelled = true;
      // The container's init is its pid namespace's init: when it dies, the kernel kills
      // every other process of the step too.
      (void)::kill(started->pid, SIGKILL);
      break;
    }
  }
  int status = runtime::Wait(started->pid).value_or(137);
  StartNetworkRelease(r.id);
  bool oom = runtime::OomKilled(spec.linux.cgroups_path).value_or(false);
  (void)runtime::RemoveCgroup(spec.linux.cgroups_path);
  Finish(r, status, oom);
  if (cancelled) return Error(Errc::kCancelled, "interrupted");
  return status;
}

}  // namespace shale::container
