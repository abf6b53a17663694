// The parent side of the lifecycle (Create, Start, Kill, Delete, Pause) and Exec(): plan,
// cgroup, clone3, stage channel, state, cleanup.
#include "runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/channel.h"
#include "runtime/hooks.h"
#include "runtime/idmap.h"
#include "runtime/init.h"
#include "runtime/rootless.h"
#include "runtime/state.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::runtime {
namespace {

// The kernel's struct clone_args (linux/sched.h), spelled out: that header clashes with
// glibc's <sched.h>.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

// clone3 without CLONE_VM: the child runs on a copy of our memory, like fork, and returns 0.
// With `cgroup_fd` >= 0 it is born in that cgroup2 directory.
pid_t Clone3(uint64_t flags, int* pidfd, int cgroup_fd) {
  CloneArgs args{};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

// How the child gets into its cgroup (CgroupManager::CloneIntoDir and SelfJoinFiles): born in
// the cgroup2 one, joining the v1 ones itself, so that nobody pays the grace period of moving
// it. The parent moves it (AddTask) only when that cannot be: a child born in a new user
// namespace may not write the host's cgroup files, and an old kernel lacks CLONE_INTO_CGROUP.
struct CgroupJoin {
  UniqueFd into;                        // O_PATH fd of CloneIntoDir(), -1 for none
  std::vector<std::string> self_files;  // what the child writes "0" into
  bool parent_adds = false;
};

CgroupJoin PlanCgroupJoin(const cgroup::CgroupManager* cg, bool new_user) {
  CgroupJoin j;
  if (!cg) return j;
  if (std::string dir = cg->CloneIntoDir(); !dir.empty()) {
    j.into = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!j.into) j.parent_adds = true;
  }
  j.self_files = cg->SelfJoinFiles();
  if (new_user && !j.self_files.empty()) {
    j.self_files.clear();
    j.parent_adds = true;
  }
  return j;
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
  if (type == "user") return CLONE_NEWUSER;
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

// Writes /proc/<pid>/{uid,gid}_map of the child's new user namespace ("0 100000 65536").
Result<void> WriteIdMaps(pid_t pid, const oci::Linux& l) {
  const char* whose = "the container's user namespace";
  TRY(WriteIdMap(pid, "uid_map", l.uid_mappings, whose));
  return WriteIdMap(pid, "gid_map", l.gid_mappings, whose);
}

// What the parent does between clone and the child's kReadyToExec.
struct Drive {
  cgroup::CgroupManager* cg = nullptr;
  bool terminal = false;
  const oci::Linux* id_maps = nullptr;  // new user namespace: write its maps first
  bool unprivileged_maps = false;       // ... as a user without CAP_SETUID (rootless.h)
  // With hooks: at kMountsDone run these (prestart, then createRuntime) with the state JSON.
  const oci::Hooks* hooks = nullptr;
  nlohmann::json* state = nullptr;
  // A filter with SCMP_ACT_NOTIFY: after the pty, take the notify fd (kSeccompFd) and send it
  // to listener->listener_path with this container state.
  const oci::Seccomp* listener = nullptr;
  nlohmann::json listener_state;
};

// After clone: writes the id maps, joins the cgroup, lets the child go on, takes the pty
// master the child opened in the container, runs the runtime hooks, passes the seccomp
// notify fd to the listener, waits for kReadyToExec.
Result<void> DriveChild(Channel& ch, pid_t pid, const Drive& d, UniqueFd* pty_master) {
  if (d.id_maps)
    TRY(d.unprivileged_maps ? WriteIdMapsUnprivileged(pid, *d.id_maps)
                            : WriteIdMaps(pid, *d.id_maps));
  if (d.cg) TRY(d.cg->AddTask(pid));
  TRY(ch.Send(Stage::kStart));
  if (d.hooks) {
    TRY(ch.Expect(Stage::kMountsDone));
    (*d.state)["pid"] = pid;
    std::string st = d.state->dump();
    TRY(RunHooks(d.hooks->prestart, st, "prestart"));
    TRY(RunHooks(d.hooks->create_runtime, st, "createRuntime"));
    TRY(ch.Send(Stage::kHooksDone, 0, std::to_string(pid)));
  }
  if (d.terminal) *pty_master = TRY(ch.ReceiveFd(Stage::kTerminal));
  if (d.listener) {
    // Our copy closes on return: the agent's is the only one left (with the child's gone).
    UniqueFd notify = TRY(ch.ReceiveFd(Stage::kSeccompFd));
    TRY(SendToSeccompListener(
        d.listener->listener_path,
        ContainerProcessState(pid, d.listener->listener_metadata, d.listener_state),
        notify.get()));
  }
  return ch.Expect(Stage::kReadyToExec);
}

// Waits for the child's execve: EOF on the CLOEXEC channel, or its kExecFailed.
Result<void> AwaitExec(Channel& ch) {
  Message m = TRY(ch.Receive());
  if (m.eof) return Ok();
  if (m.stage == Stage::kExecFailed) return Channel::ToError(m);
  return Error(Errc::kInternal, "stage channel: unexpected message after kReadyToExec");
}

struct Cloned {
  pid_t pid = -1;
  UniqueFd pidfd;
  Channel ch;
};

// Clones the child that runs `child_main` (which never returns), born in `pid_ns` when set
// and in `cg->into` when it can be (else cg->parent_adds is set).
template <class ChildMain>
Result<Cloned> CloneChild(uint64_t flags, const UniqueFd& pid_ns, CgroupJoin* cg,
                          std::string_view what, ChildMain child_main) {
  auto [parent_ch, child_ch] = TRY(Channel::Pair());
  PidNsSwitch pid_switch;
  if (pid_ns) TRY(pid_switch.Enter(pid_ns.get()));
  int pidfd = -1;
  pid_t pid = Clone3(flags, &pidfd, cg->into ? cg->into.get() : -1);
  if (pid < 0 && cg->into) {  // no CLONE_INTO_CGROUP (kernel < 5.7, not a cgroup2 dir)
    cg->parent_adds = true;
    pid = Clone3(flags, &pidfd, -1);
  }
  if (pid == 0) {
    parent_ch.Close();
    child_main(child_ch);
  }
  int clone_err = errno;
  pid_switch.Leave();
  if (pid < 0) return Error::FromErrno(clone_err, std::string(what) + ": clone3");
  Cloned c;
  c.pid = pid;
  c.pidfd = UniqueFd(pidfd);
  c.ch = std::move(parent_ch);
  return c;
}

// Clone, drive to kReadyToExec and wait for the execve: Exec's whole life. On any failure
// the child is killed and reaped; the caller's guards take care of the cgroup.
template <class ChildMain>
Result<Started> CloneAndDrive(uint64_t flags, const UniqueFd& pid_ns, CgroupJoin* cg, Drive d,
                              std::string_view what, ChildMain child_main) {
  Cloned c = TRY(CloneChild(flags, pid_ns, cg, what, child_main));
  if (!cg->parent_adds) d.cg = nullptr;
  ChildGuard child_guard(c.pid, c.pidfd.get());
  UniqueFd pty_master;
  TRY(DriveChild(c.ch, c.pid, d, &pty_master).Wrap(what));
  TRY(AwaitExec(c.ch).Wrap(what));
  child_guard.Release();
  Started s;
  s.pid = c.pid;
  s.pidfd = std::move(c.pidfd);
  s.pty_master = std::move(pty_master);
  return s;
}

// Removes the state directory unless released: a failed create leaves nothing.
class StateDirGuard {
 public:
  StateDirGuard() = default;
  StateDirGuard(const StateDirGuard&) = delete;
  StateDirGuard& operator=(const StateDirGuard&) = delete;
  ~StateDirGuard() {
    if (!dir_.empty()) (void)RemoveTreeAbs(dir_);
  }
  void Guard(std::string dir) { dir_ = std::move(dir); }
  void Release() { dir_.clear(); }

 private:
  std::string dir_;
};

}  // namespace

struct Created::Impl {
  Channel ch;
  UniqueFd pidfd;
  std::unique_ptr<cgroup::CgroupManager> cg;
  std::string state_dir;
  std::vector<oci::Hook> poststart;
  nlohmann::json state;
  std::string what;
  bool detached = false;
};

Created::Created(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Created::Created(Created&& o) noexcept
    : impl_(std::move(o.impl_)), started_(std::move(o.started_)) {}

Created::~Created() {
  if (!impl_ || impl_->detached) return;
  // Never started: nothing of it may stay.
  { ChildGuard kill(started_.pid, impl_->pidfd.get()); }
  if (impl_->cg) {
    (void)impl_->cg->KillAll();
    (void)impl_->cg->Remove();
  }
  if (!impl_->state_dir.empty()) (void)RemoveTreeAbs(impl_->state_dir);
}

void Created::Detach() {
  if (impl_) impl_->detached = true;
}

Result<Created> Create(const oci::RuntimeSpec& spec, const RunOptions& opts) {
  std::unique_ptr<cgroup::CgroupManager> cg;
  if (!spec.linux.cgroups_path.empty()) cg = TRY(cgroup::NewCgroupManager(spec.linux.cgroups_path));
  bool v2 = cg && cg->version() == cgroup::Version::kV2;
  InitConfig cfg = TRY(PlanInit(spec, opts, v2));

  uint64_t flags = 0;  // no CLONE_NEWNS unless the spec asks: see InitConfig::host_mount_ns
  std::vector<UniqueFd> ns_fds;
  UniqueFd pid_ns;
  bool new_user = false;
  for (const oci::Namespace& n : spec.linux.namespaces) {
    int f = TRY(NamespaceFlag(n.type));
    if (n.path.empty()) {
      flags |= f;
      new_user |= (f == CLONE_NEWUSER);
      continue;
    }
    UniqueFd fd = OpenNs(n.path);
    if (!fd) return Error::FromErrno(errno, "open " + n.type + " namespace " + n.path);
    if (f == CLONE_NEWPID) {
      pid_ns = std::move(fd);
      continue;
    }
    if (f == CLONE_NEWNS) flags &= ~static_cast<uint64_t>(CLONE_NEWNS);
    if (f == CLONE_NEWUSER)
      cfg.join_ns.emplace(cfg.join_ns.begin(), fd.get(), f);  // first: the others need it
    else
      cfg.join_ns.emplace_back(fd.get(), f);
    ns_fds.push_back(std::move(fd));
  }
  if (flags & CLONE_NEWCGROUP) flags &= ~static_cast<uint64_t>(CLONE_NEWCGROUP);  // after join
  // Idmapped binds are made here, in the runtime's user namespace (idmap.h); the init gets
  // the trees across the clone, and our copies close right after it.
  std::vector<UniqueFd> idmapped_trees = TRY(OpenIdmappedTrees(&cfg.mounts));
  if (new_user && geteuid() != 0 && IsSelfMapping(spec.linux.gid_mappings, getegid()))
    cfg.process.setgroups_denied = true;  // WriteIdMapsUnprivileged denies it

  if (!cfg.process.terminal) {
    cfg.process.stdio[0] = opts.stdio.in;
    cfg.process.stdio[1] = opts.stdio.out;
    cfg.process.stdio[2] = opts.stdio.err;
  }

  State st;
  st.id = opts.container_id;
  st.bundle = opts.bundle;
  st.rootfs = spec.root.path;
  st.created = NowRfc3339();
  st.cgroups_path = spec.linux.cgroups_path;
  st.annotations = spec.annotations.is_object() ? spec.annotations : nlohmann::json::object();
  // The create-time hooks see "created" (what runtime-tools' validation checks, as crun
  // and runc pass it), though the init is still being set up.
  nlohmann::json hook_state = OciState(st, Status::kCreated);
  cfg.state = hook_state;

  StateDirGuard dir_guard;
  UniqueFd fifo;
  if (!opts.state_dir.empty()) {
    if (mkdir(opts.state_dir.c_str(), 0711) != 0) {
      if (errno == EEXIST)
        return Error(Errc::kAlreadyExists, "container " + opts.container_id + " already exists");
      return Error::FromErrno(errno, "mkdir " + opts.state_dir);
    }
    dir_guard.Guard(opts.state_dir);
    TRY(WriteStateFile(opts.state_dir, kSpecFile, oci::ToJson(spec).dump()));
    std::string fifo_path = opts.state_dir + "/" + kExecFifo;
    if (mkfifo(fifo_path.c_str(), 0600) != 0) return Error::FromErrno(errno, "mkfifo " + fifo_path);
    // O_RDWR never blocks on a fifo; the child inherits this copy and waits on it.
    fifo = UniqueFd(::open(fifo_path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fifo) return Error::FromErrno(errno, "open " + fifo_path);
    cfg.release_fd = fifo.get();
  }

  // Before Create: a Create that fails halfway (v1: some hierarchies made) is undone too.
  CgroupGuard cg_guard(cg.get());
  if (cg) {
    auto made = cg->Create();
    if (!made && opts.rootless && made.error().code() == Errc::kPermission) {
      // Rootless without a delegated cgroup: none, unless the spec asks for limits.
      std::vector<std::string> limits = ResourceLimitFields(spec.linux.resources);
      if (!limits.empty())
        return Error(Errc::kPermission,
                     "rootless: " + limits[0] + " needs a cgroup, and cgroup " +
                         spec.linux.cgroups_path + " cannot be made by uid " +
                         std::to_string(geteuid()) + " (" + made.error().message() +
                         "); remove linux.resources from config.json, delegate a cgroup to "
                         "the user, or run as root");
      LogDebug("rootless: no cgroup for " + opts.container_id + ": " + made.error().message());
      cg_guard.Release();
      (void)cg->Remove();  // what was made before the refusal
      cg.reset();
      st.cgroups_path.clear();
    } else {
      TRY(std::move(made).Wrap("create cgroup " + spec.linux.cgroups_path));
    }
  }
  if (cg) {
    // As runc and crun do: whatever the spec's device rules, the devices every container
    // needs (null, zero, full, random, urandom, tty, console, ptmx, pts/*, net/tun) stay
    // usable. A spec without rules leaves the cgroup as its parent has it.
    oci::LinuxResources res = spec.linux.resources;
    if (!res.devices.empty()) {
      std::vector<oci::DeviceRule> base = oci::DefaultDeviceRules();
      res.devices.insert(res.devices.end(), base.begin() + 1, base.end());  // not its deny-all
    }
    TRY(cg->Apply(res).Wrap("cgroup " + spec.linux.cgroups_path));
  }

  std::string what = "create container " + opts.container_id;
  CgroupJoin join = PlanCgroupJoin(cg.get(), new_user);
  cfg.cgroup_tasks = join.self_files;
  Cloned c = TRY(CloneChild(flags, pid_ns, &join, what, [&cfg](Channel& ch) { RunInit(cfg, ch); }));
  ChildGuard child_guard(c.pid, c.pidfd.get());
  idmapped_trees.clear();
  // In the host's mount namespace the container's mounts outlive a failed create.
  struct MountsGuard {
    const std::string* rootfs;
    ~MountsGuard() {
      if (rootfs) (void)DetachRootfsBind(*rootfs);
    }
  } mounts_guard{cfg.host_mount_ns ? &cfg.rootfs : nullptr};
  fifo.reset();  // only the child reads it
  Drive d;
  if (join.parent_adds) d.cg = cg.get();
  d.terminal = cfg.process.terminal;
  if (new_user) d.id_maps = &spec.linux;
  d.unprivileged_maps = new_user && geteuid() != 0;
  if (cfg.sync_hooks) {
    d.hooks = &spec.hooks;
    d.state = &hook_state;
  }
  if (cfg.process.seccomp.listener) {
    // The agent sees the container being created (runtime-spec's example says "creating").
    d.listener = &*spec.linux.seccomp;
    d.listener_state = OciState(st, Status::kCreating);
    d.listener_state["pid"] = c.pid;
  }
  UniqueFd pty_master;
  TRY(DriveChild(c.ch, c.pid, d, &pty_master).Wrap(what));

  st.pid = c.pid;
  st.pid_start = ProcessStartTime(c.pid);
  if (!opts.state_dir.empty()) TRY(SaveState(opts.state_dir, st));

  auto impl = std::make_unique<Created::Impl>();
  impl->ch = std::move(c.ch);
  impl->pidfd = std::move(c.pidfd);
  impl->state_dir = opts.state_dir;
  impl->poststart = spec.hooks.poststart;
  impl->state = OciState(st, Status::kRunning);
  impl->what = "start container " + opts.container_id;
  Created created(std::move(impl));
  created.started_.pid = c.pid;
  created.started_.pty_master = std::move(pty_master);
  created.impl_->cg = std::move(cg);
  child_guard.Release();
  cg_guard.Release();
  dir_guard.Release();
  mounts_guard.rootfs = nullptr;
  return created;
}

namespace {

// Writes the byte the created init waits for into its exec fifo, then removes the fifo (the
// container is no longer `created`). kBusy if another start got there first.
Result<void> ReleaseFifo(const std::string& dir, const std::string& id) {
  std::string path = dir + "/" + kExecFifo;
  UniqueFd f(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!f) {
    if (errno == ENOENT) return Error(Errc::kBusy, "container " + id + " is not created: already started");
    if (errno == ENXIO) return Error(Errc::kBusy, "container " + id + ": its init has exited (stopped)");
    return Error::FromErrno(errno, "open " + path);
  }
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Error(Errc::kBusy, "container " + id + " is already started");
    return Error::FromErrno(errno, "remove " + path);
  }
  if (write(f.get(), "0", 1) != 1) return Error::FromErrno(errno, "write " + path);
  return Ok();
}

void RunPoststart(const std::vector<oci::Hook>& hooks, const nlohmann::json& state) {
  // The spec: a failing poststart hook is logged, the container runs on.
  if (auto r = RunHooks(hooks, state.dump(), "poststart"); !r) LogWarn(r.error().message());
}

}  // namespace

Result<Started> Created::Start() && {
  Impl& in = *impl_;
  if (in.state_dir.empty()) {
    TRY(in.ch.Send(Stage::kExec).Wrap(in.what));
  } else {
    TRY(ReleaseFifo(in.state_dir, in.state.value("id", "")));
  }
  if (auto r = AwaitExec(in.ch); !r) {
    return std::move(r).error().Wrap(in.what);  // ~Created kills and removes what is left
  }
  RunPoststart(in.poststart, in.state);
  in.detached = true;
  started_.pidfd = std::move(in.pidfd);
  return std::move(started_);
}

Result<Started> Run(const oci::RuntimeSpec& spec, const RunOptions& opts) {
  Created c = TRY(Create(spec, opts));
  return std::move(c).Start();
}

namespace {

struct Locked {
  FileLock lock;
  State state;
  Status status;
};

Result<Locked> LockAndLoad(const std::string& dir) {
  if (!IsDirectory(dir))
    return Error(Errc::kNotFound, "container " + Basename(dir) + " does not exist");
  Locked l;
  l.lock = TRY(FileLock::Acquire(dir + "/lock", FileLock::Mode::kExclusive));
  l.state = TRY(LoadState(dir));
  l.status = CurrentStatus(dir, l.state);
  return l;
}

Error WrongState(const State& s, Status st, std::string_view action) {
  return Error(Errc::kBusy, "cannot " + std::string(action) + " container " + s.id +
                                ": it is " + std::string(StatusName(st)));
}

// Signals the init only if it is still the process we created (start time checked after
// pidfd_open, so the pid cannot be recycled in between).
Result<void> SignalInit(const State& s, int sig) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, s.pid, 0)));
  if (!pidfd || ProcessStartTime(s.pid) != s.pid_start)
    return Error(Errc::kBusy, "container " + s.id + " is stopped: its init has exited");
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0)
    return Error::FromErrno(errno, "signal " + std::to_string(sig) + " to the init of " + s.id);
  return Ok();
}

// Waits (bounded) until the init has exited.
void AwaitExit(const State& s, int timeout_ms) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, s.pid, 0)));
  if (!pidfd || ProcessStartTime(s.pid) != s.pid_start) return;
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<void> Start(const std::string& dir) {
  Locked l = TRY(LockAndLoad(dir));
  if (l.status != Status::kCreated) return WrongState(l.state, l.status, "start");
  TRY(ReleaseFifo(dir, l.state.id));
  oci::RuntimeSpec spec = TRY(LoadSpec(dir));
  RunPoststart(spec.hooks.poststart, OciState(l.state, Status::kRunning));
  return Ok();
}

Result<void> Kill(const std::string& dir, int sig, bool all) {
  Locked l = TRY(LockAndLoad(dir));
  if (l.status == Status::kStopped) return WrongState(l.state, l.status, "kill");
  if (all && !l.state.cgroups_path.empty()) {
    for (pid_t p : TRY(CgroupPids(l.state.cgroups_path))) ::kill(p, sig);
    return Ok();
  }
  if (all) {  // no cgroup (rootless): the processes found through /proc
    for (pid_t p : ProcessPids(l.state.pid, l.state.pid_start)) ::kill(p, sig);
    return Ok();
  }
  return SignalInit(l.state, sig);
}

Result<void> Delete(const std::string& dir, bool force) {
  Locked l = TRY(LockAndLoad(dir));
  const State& s = l.state;
  if ((l.status == Status::kRunning || l.status == Status::kPaused) && !force)
    return Error(Errc::kBusy, "cannot delete container " + s.id + ": it is " +
                                  std::string(StatusName(l.status)) +
                                  "; stop it first or use --force");
  if (l.status != Status::kStopped) {
    if (l.status == Status::kPaused && !s.cgroups_path.empty()) (void)Freeze(s.cgroups_path, false);
    if (s.cgroups_path.empty())  // no cgroup to empty below: what /proc shows of it
      for (pid_t p : ProcessPids(s.pid, s.pid_start)) ::kill(p, SIGKILL);
    (void)SignalInit(s, SIGKILL);
    AwaitExit(s, 2000);
  }
  if (!s.cgroups_path.empty()) TRY(RemoveCgroup(s.cgroups_path).Wrap("delete " + s.id));
  auto spec = LoadSpec(dir);
  if (spec && SharesHostMountNs(*spec))
    TRY(DetachRootfsBind(s.rootfs).Wrap("delete " + s.id));
  TRY(RemoveTreeAbs(dir).Wrap("delete " + s.id));
  if (spec) {
    if (auto r = RunHooks(spec->hooks.poststop, OciState(s, Status::kStopped).dump(), "poststop");
        !r)
      LogWarn(r.error().message());
  }
  return Ok();
}

Result<void> Pause(const std::string& dir, bool paused) {
  Locked l = TRY(LockAndLoad(dir));
  Status want_from = paused ? Status::kRunning : Status::kPaused;
  if (l.status != want_from) return WrongState(l.state, l.status, paused ? "pause" : "resume");
  if (l.state.cgroups_path.empty())
    return Error(Errc::kUnsupported, "container " + l.state.id + " has no cgroup to freeze");
  TRY(Freeze(l.state.cgroups_path, paused));
  l.state.paused = paused;
  return SaveState(dir, l.state);
}

namespace {

// Rootless exec (RunExecHelper): unprivileged, we may not setns into the container's pid
// namespace ourselves, so a helper joins its user namespace first and forks the process
// inside. As a subreaper we inherit that process once the helper exits: it is then our
// child, waited for as any other.
Result<Started> ExecThroughHelper(int user_fd, const UniqueFd& pid_ns, CgroupJoin* cg_join,
                                  const std::vector<std::pair<int, int>>& join,
                                  const ProcessPlan& plan, Drive d) {
  const char* what = "exec in container";
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return Error::FromErrno(errno, "PR_SET_CHILD_SUBREAPER for rootless exec");
  int pid_fd = pid_ns ? pid_ns.get() : -1;
  UniqueFd no_pid_switch;
  Cloned helper = TRY(CloneChild(0, no_pid_switch, cg_join, what, [&](Channel& ch) {
    RunExecHelper(user_fd, pid_fd, join, cg_join->self_files, plan, ch);
  }));
  if (!cg_join->parent_adds) d.cg = nullptr;
  pid_t pid = -1;
  {
    ChildGuard helper_guard(helper.pid, helper.pidfd.get());
    Message m = TRY(helper.ch.Receive().Wrap(what));
    if (!m.eof && m.stage == Stage::kExecFailed) return Channel::ToError(m).Wrap(what);
    if (m.eof || m.stage != Stage::kChildPid)
      return Error(Errc::kInternal, std::string(what) + ": stage channel: expected kChildPid");
    pid = static_cast<pid_t>(TRY(ParseInt(m.text, 1, INT32_MAX, "the exec'd pid")));
    TRY(Wait(helper.pid).Wrap(what));  // reaped: `pid` is ours now (subreaper)
    helper_guard.Release();
  }
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return Error::FromErrno(errno, std::string(what) + ": pidfd_open");
  ChildGuard child_guard(pid, pidfd.get());
  UniqueFd pty_master;
  TRY(DriveChild(helper.ch, pid, d, &pty_master).Wrap(what));
  TRY(AwaitExec(helper.ch).Wrap(what));
  child_guard.Release();
  Started s;
  s.pid = pid;
  s.pidfd = std::move(pidfd);
  s.pty_master = std::move(pty_master);
  return s;
}

}  // namespace

Result<Started> Exec(pid_t init_pid, const oci::RuntimeSpec& spec, const oci::Process& process,
                     const ExecOptions& opts) {
  ProcessPlan plan = TRY(PlanProcess(process, spec.process.capabilities,
                                     spec.process.no_new_privileges, spec.linux.seccomp,
                                     spec.linux.personality, opts.seccomp_cache));
  std::string base = "/proc/" + std::to_string(init_pid) + "/ns/";
  std::vector<UniqueFd> ns_fds;
  std::vector<std::pair<int, int>> join;
  UniqueFd pid_ns;
  int user_fd = -1;  // the container's user namespace, when not ours
  // user first: the others are owned by it. mnt last: joining it changes our root.
  for (const char* name : {"user", "ipc", "uts", "net", "cgroup", "pid", "mnt"}) {
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
    if (std::string(name) == "user") user_fd = theirs.get();
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

  plan.preserve_fds = opts.preserve_fds;
  // A rootless container's user namespace may deny setgroups (rootless.h).
  if (auto sg = ReadFile("/proc/" + std::to_string(init_pid) + "/setgroups");
      sg && Trim(*sg) == "deny")
    plan.setgroups_denied = true;
  CgroupJoin cg_join = PlanCgroupJoin(cg.get(), false);  // the user namespace is joined later
  Drive d;
  d.cg = cg.get();
  d.terminal = plan.terminal;
  if (plan.seccomp.listener) {
    d.listener = &*spec.linux.seccomp;
    d.listener_state = opts.state;
  }
  if (user_fd >= 0 && geteuid() != 0) {
    std::vector<std::pair<int, int>> rest(join.begin() + 1, join.end());  // user is first
    return ExecThroughHelper(user_fd, pid_ns, &cg_join, rest, plan, std::move(d));
  }
  return CloneAndDrive(0, pid_ns, &cg_join, std::move(d), "exec in container",
                       [&join, &plan, &cg_join](Channel& ch) {
                         RunExecInit(join, cg_join.self_files, plan, ch);
                       });
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
