// The parent side of Run() and Exec(): plan, cgroup, clone3, stage channel, cleanup.
#include "runtime/runtime.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/channel.h"
#include "runtime/init.h"

namespace shale::runtime {
namespace {

// The kernel's struct clone_args (linux/sched.h), spelled out: that header clashes with
// glibc's <sched.h>.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

// clone3 without CLONE_VM: the child runs on a copy of our memory, like fork, and returns 0.
pid_t Clone3(uint64_t flags, int* pidfd) {
  CloneArgs args{};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

// Kills and reaps the child unless released: nothing is left behind on a failed start.
class ChildGuard {
 public:
  ChildGuard(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  ~ChildGuard() {
    if (pid_ <= 0) return;
    if (syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0) != 0) ::kill(pid_, SIGKILL);
    int st;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
  void Release() { pid_ = -1; }

 private:
  pid_t pid_;
  int pidfd_;
};

// Removes the cgroup (killing what is in it) unless released.
class CgroupGuard {
 public:
  explicit CgroupGuard(cgroup::CgroupManager* m) : m_(m) {}
  ~CgroupGuard() {
    if (!m_) return;
    (void)m_->KillAll();
    (void)m_->Remove();
  }
  void Release() { m_ = nullptr; }

 private:
  cgroup::CgroupManager* m_;
};

Result<int> NamespaceFlag(const std::string& type) {
  if (type == "pid") return CLONE_NEWPID;
  if (type == "network" || type == "net") return CLONE_NEWNET;
  if (type == "mount" || type == "mnt") return CLONE_NEWNS;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  if (type == "user")
    return Error(Errc::kUnsupported, "user namespaces are not supported by shale's runtime yet");
  return Error(Errc::kInvalidArgument, "linux.namespaces: unknown type \"" + type + "\"");
}

UniqueFd OpenNs(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

// Sets the namespace our *children* are born in (pid_for_children) and restores ours after.
class PidNsSwitch {
 public:
  Result<void> Enter(int target_fd) {
    own_ = OpenNs("/proc/self/ns/pid");
    if (!own_) return Error::FromErrno(errno, "open /proc/self/ns/pid");
    if (setns(target_fd, CLONE_NEWPID) != 0)
      return Error::FromErrno(errno, "setns into the container's pid namespace");
    return Ok();
  }
  void Leave() {
    if (own_) (void)setns(own_.get(), CLONE_NEWPID);
    own_.reset();
  }
  ~PidNsSwitch() { Leave(); }

 private:
  UniqueFd own_;
};

// After clone: joins the cgroup, lets the child go on, takes the pty master the child opened
// in the container (when `pty_master`), waits for execve.
Result<void> DriveChild(Channel& ch, pid_t pid, cgroup::CgroupManager* cg,
                        UniqueFd* pty_master) {
  if (cg) TRY(cg->AddTask(pid));
  TRY(ch.Send(Stage::kStart));
  if (pty_master) *pty_master = TRY(ch.ReceiveFd(Stage::kTerminal));
  TRY(ch.Expect(Stage::kReadyToExec));
  Message m = TRY(ch.Receive());
  if (m.eof) return Ok();  // CLOEXEC channel closed by a successful execve
  if (m.stage == Stage::kExecFailed) return Channel::ToError(m);
  return Error(Errc::kInternal, "stage channel: unexpected message after kReadyToExec");
}

// Clones the child that runs `child_main` (which never returns), born in `pid_ns` when set,
// then drives it through the stages to its execve. On any failure the child is killed and
// reaped; the caller's guards take care of the cgroup.
template <class ChildMain>
Result<Started> CloneAndDrive(uint64_t flags, const UniqueFd& pid_ns, cgroup::CgroupManager* cg,
                              bool terminal, std::string_view what, ChildMain child_main) {
  auto [parent_ch, child_ch] = TRY(Channel::Pair());
  PidNsSwitch pid_switch;
  if (pid_ns) TRY(pid_switch.Enter(pid_ns.get()));
  int pidfd = -1;
  pid_t pid = Clone3(flags, &pidfd);
  if (pid == 0) {
    parent_ch.Close();
    child_main(child_ch);
  }
  int clone_err = errno;
  pid_switch.Leave();
  if (pid < 0) return Error::FromErrno(clone_err, std::string(what) + ": clone3");
  UniqueFd pidfd_owner(pidfd);
  child_ch.Close();
  ChildGuard child_guard(pid, pidfd);

  UniqueFd pty_master;
  TRY(DriveChild(parent_ch, pid, cg, terminal ? &pty_master : nullptr).Wrap(what));

  child_guard.Release();
  Started s;
  s.pid = pid;
  s.pidfd = std::move(pidfd_owner);
  s.pty_master = std::move(pty_master);
  return s;
}

}  // namespace

Result<Started> Run(const oci::RuntimeSpec& spec, const RunOptions& opts) {
  std::unique_ptr<cgroup::CgroupManager> cg;
  if (!spec.linux.cgroups_path.empty()) cg = TRY(cgroup::NewCgroupManager(spec.linux.cgroups_path));
  bool v2 = cg && cg->version() == cgroup::Version::kV2;
  InitConfig cfg = TRY(PlanInit(spec, opts, v2));

  uint64_t flags = CLONE_NEWNS;
  std::vector<UniqueFd> ns_fds;
  UniqueFd pid_ns;
  for (const oci::Namespace& n : spec.linux.namespaces) {
    int f = TRY(NamespaceFlag(n.type));
    if (n.path.empty()) {
      flags |= f;
      continue;
    }
    UniqueFd fd = OpenNs(n.path);
    if (!fd) return Error::FromErrno(errno, "open " + n.type + " namespace " + n.path);
    if (f == CLONE_NEWPID) {
      pid_ns = std::move(fd);
      continue;
    }
    if (f == CLONE_NEWNS) flags &= ~static_cast<uint64_t>(CLONE_NEWNS);
    cfg.join_ns.emplace_back(fd.get(), f);
    ns_fds.push_back(std::move(fd));
  }
  if (flags & CLONE_NEWCGROUP) flags &= ~static_cast<uint64_t>(CLONE_NEWCGROUP);  // after join

  if (!cfg.process.terminal) {
    cfg.process.stdio[0] = opts.stdio.in;
    cfg.process.stdio[1] = opts.stdio.out;
    cfg.process.stdio[2] = opts.stdio.err;
  }

  if (cg) TRY(cg->Create().Wrap("create cgroup " + spec.linux.cgroups_path));
  CgroupGuard cg_guard(cg.get());
  if (cg) TRY(cg->Apply(spec.linux.resources).Wrap("cgroup " + spec.linux.cgroups_path));

  Started s = TRY(CloneAndDrive(flags, pid_ns, cg.get(), cfg.process.terminal,
                                "start container " + opts.container_id,
                                [&cfg](Channel& ch) { RunInit(cfg, ch); }));
  cg_guard.Release();
  return s;
}

Result<Started> Exec(pid_t init_pid, const oci::RuntimeSpec& spec, const oci::Process& process,
                     const ExecOptions& opts) {
  ProcessPlan plan = TRY(PlanProcess(process, spec.process.capabilities,
                                     spec.process.no_new_privileges, spec.linux.seccomp));
  std::string base = "/proc/" + std::to_string(init_pid) + "/ns/";
  std::vector<UniqueFd> ns_fds;
  std::vector<std::pair<int, int>> join;
  UniqueFd pid_ns;
  // mnt last: joining it changes our root and cwd to the container's.
  for (const char* name : {"ipc", "uts", "net", "cgroup", "pid", "mnt"}) {
    UniqueFd theirs = OpenNs(base + name);
    if (!theirs) {
      if (errno == ENOENT && std::string(name) == "cgroup") continue;
      return Error::FromErrno(errno, "open " + base + name + " (is the container running?)");
    }
    struct stat a, b;
    std::string mine = std::string("/proc/self/ns/") + name;
    if (fstat(theirs.get(), &a) == 0 && stat(mine.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
      continue;  // shared with us (e.g. host network)
    if (std::string(name) == "pid") {
      pid_ns = std::move(theirs);
      continue;
    }
    join.emplace_back(theirs.get(), 0);
    ns_fds.push_back(std::move(theirs));
  }

  std::unique_ptr<cgroup::CgroupManager> cg;
  if (!spec.linux.cgroups_path.empty()) cg = TRY(cgroup::NewCgroupManager(spec.linux.cgroups_path));

  if (!plan.terminal) {
    plan.stdio[0] = opts.stdio.in;
    plan.stdio[1] = opts.stdio.out;
    plan.stdio[2] = opts.stdio.err;
  }

  return CloneAndDrive(0, pid_ns, cg.get(), plan.terminal, "exec in container",
                       [&join, &plan](Channel& ch) { RunExecInit(join, plan, ch); });
}

Result<void> Freeze(const std::string& cgroups_path, bool frozen) {
  auto cg = TRY(cgroup::NewCgroupManager(cgroups_path));
  return cg->Freeze(frozen).Wrap(frozen ? "pause" : "unpause");
}

Result<bool> OomKilled(const std::string& cgroups_path) {
  auto cg = TRY(cgroup::NewCgroupManager(cgroups_path));
  return cg->OomKilled();
}

Result<void> RemoveCgroup(const std::string& cgroups_path) {
  auto cg = TRY(cgroup::NewCgroupManager(cgroups_path));
  TRY(cg->KillAll().Wrap("remove cgroup " + cgroups_path));
  return cg->Remove().Wrap("remove cgroup " + cgroups_path);
}

Result<std::vector<pid_t>> CgroupPids(const std::string& cgroups_path) {
  auto cg = TRY(cgroup::NewCgroupManager(cgroups_path));
  auto pids = cg->Pids();
  if (!pids && pids.error().code() == Errc::kNotFound) return std::vector<pid_t>{};
  return pids;
}

Result<int> Wait(pid_t pid) {
  int st;
  for (;;) {
    if (waitpid(pid, &st, 0) >= 0) break;
    if (errno != EINTR) return Error::FromErrno(errno, "waitpid " + std::to_string(pid));
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return Error(Errc::kInternal, "waitpid " + std::to_string(pid) + ": unexpected status");
}

}  // namespace shale::runtime
