// The container's init: the child side of Run() and Exec().
#include "runtime/init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "runtime/linux_mount.h"
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/hooks.h"
#include "util/dir.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime {
namespace {

// "/proc/self/fd/N": mounting onto the fd of a path resolved with openat2(RESOLVE_IN_ROOT)
// means a symlink planted in the image cannot redirect the mount to the host (crun's way).
struct FdPath {
  explicit FdPath(int fd) { snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd); }
  const char* c_str() const { return buf; }
  char buf[32];
};

Result<void> SysMount(const char* src, const char* target, const char* type,
                      unsigned long flags, const char* data, std::string_view what) {
  if (::mount(src, target, type, flags, data) != 0)
    return Error::FromErrno(errno, "mount " + std::string(what));
  return Ok();
}

unsigned long FlagsOf(int fd) {
  struct statvfs sv;
  if (fstatvfs(fd, &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

// Remounts the mount at `rel` (inside root) read-only, keeping its other flags.
Result<void> RemountReadonly(int root_fd, std::string_view rel, unsigned long extra,
                             std::string_view what) {
  UniqueFd fd = TRY(OpenInRoot(root_fd, rel, O_PATH, 0, what));
  FdPath p(fd.get());
  return SysMount(nullptr, p.c_str(), nullptr,
                  MS_BIND | MS_REMOUNT | MS_RDONLY | FlagsOf(fd.get()) | extra, nullptr,
                  std::string(what) + " read-only");
}

// Creates the mount point for `m` inside the rootfs and returns an O_PATH fd to it.
Result<UniqueFd> MakeMountPoint(const Dir& root, const PlannedMount& m) {
  if (!m.source_is_file) {
    Dir d = TRY(root.MakeDirs(m.destination, 0755));
    return UniqueFd(fcntl(d.fd(), F_DUPFD_CLOEXEC, 3));
  }
  std::string parent, leaf;
  if (!SplitParentLeaf(m.destination, &parent, &leaf))
    return Error(Errc::kInvalidArgument, "mount destination " + m.destination + " is invalid");
  Dir pd = TRY(root.MakeDirs(parent, 0755));
  auto f = OpenInRoot(pd.fd(), leaf, O_PATH, 0, m.destination);
  if (f) return f;
  UniqueFd created = TRY(OpenInRoot(pd.fd(), leaf, O_CREAT | O_WRONLY, 0644, m.destination));
  return OpenInRoot(pd.fd(), leaf, O_PATH, 0, m.destination);
}

Result<void> DoMount(const Dir& root, const PlannedMount& m) {
  UniqueFd target = TRY(MakeMountPoint(root, m));
  FdPath tp(target.get());
  std::string what = m.destination;
  if (m.options.bind) {
    if (m.tree_fd >= 0) {
      // The idmapped tree the parent made (idmap.h); ours is a copy to close once attached.
      UniqueFd tree(m.tree_fd);
      if (syscall(SYS_move_mount, tree.get(), "", target.get(), "",
                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
        return Error::FromErrno(errno, "move_mount the idmapped " + m.source + " on " + what);
    } else {
      TRY(SysMount(m.source.c_str(), tp.c_str(), nullptr, m.options.flags & (MS_BIND | MS_REC),
                   nullptr, "bind " + m.source + " on " + what));
    }
    if (m.options.NeedsRemount()) {
      // Reopen: the old fd still points below the new mount.
      UniqueFd now = TRY(OpenInRoot(root.fd(), m.destination, O_PATH, 0, what));
      FdPath np(now.get());
      TRY(SysMount(nullptr, np.c_str(), nullptr,
                   MS_BIND | MS_REMOUNT | FlagsOf(now.get()) | (m.options.flags & ~MS_REC),
                   nullptr, "remount " + what));
    }
  } else {
    TRY(SysMount(m.source.c_str(), tp.c_str(), m.type.c_str(), m.options.flags,
                 m.options.data.empty() ? nullptr : m.options.data.c_str(),
                 m.type + " on " + what));
  }
  if (m.options.propagation) {
    UniqueFd now = TRY(OpenInRoot(root.fd(), m.destination, O_PATH, 0, what));
    FdPath np(now.get());
    TRY(SysMount(nullptr, np.c_str(), nullptr, m.options.propagation, nullptr,
                 "propagation of " + what));
  }
  return Ok();
}

struct DevNode {
  const char* name;
  unsigned major, minor;
};
constexpr DevNode kDevices[] = {{"null", 1, 3},    {"zero", 1, 5},    {"full", 1, 7},
                                {"random", 1, 8},  {"urandom", 1, 9}, {"tty", 5, 0}};

// Device nodes, /dev symlinks and the /dev/console placeholder in the container's /dev.
Result<void> SetupDev(const Dir& root, bool console) {
  auto devr = root.OpenDir("dev");
  if (!devr) return Ok();  // no /dev in this rootfs and none mounted
  Dir dev = std::move(*devr);
  for (const DevNode& d : kDevices) {
    if (mknodat(dev.fd(), d.name, S_IFCHR | 0666, makedev(d.major, d.minor)) == 0) {
      fchmodat(dev.fd(), d.name, 0666, 0);
      continue;
    }
    if (errno == EEXIST) continue;
    // mknod is refused (no CAP_MKNOD, or a nodev mount): bind the host's node instead.
    UniqueFd f = TRY(OpenInRoot(dev.fd(), d.name, O_CREAT | O_WRONLY, 0644, "/dev"));
    f.reset();
    UniqueFd t = TRY(OpenInRoot(dev.fd(), d.name, O_PATH, 0, "/dev"));
    std::string host = std::string("/dev/") + d.name;
    TRY(SysMount(host.c_str(), FdPath(t.get()).c_str(), nullptr, MS_BIND, nullptr,
                 "bind " + host));
  }
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
      {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
      {"pts/ptmx", "ptmx"}};
  for (const auto& [to, name] : links) {
    if (symlinkat(to, dev.fd(), name) != 0 && errno != EEXIST)
      return Error::FromErrno(errno, std::string("symlink /dev/") + name);
  }
  if (console) {
    // The pty slave is bound here once root is switched (OpenTerminal).
    UniqueFd f = TRY(OpenInRoot(dev.fd(), "console", O_CREAT | O_WRONLY, 0600, "/dev"));
  }
  return Ok();
}

// linux.devices: mknod inside the rootfs; where that is refused (no CAP_MKNOD, a user
// namespace) the host's node of the same path is bound instead, as runc does.
Result<void> MakeDevices(const Dir& root, const std::vector<PlannedDevice>& devs) {
  for (const PlannedDevice& d : devs) {
    std::string parent, leaf;
    if (!SplitParentLeaf(d.path, &parent, &leaf))
      return Error(Errc::kInvalidArgument, "linux.devices: invalid path " + d.path);
    Dir pd = TRY(root.MakeDirs(parent, 0755));
    (void)unlinkat(pd.fd(), leaf.c_str(), 0);  // an image's placeholder
    if (mknodat(pd.fd(), leaf.c_str(), d.mode, d.dev) != 0) {
      if (errno != EPERM) return Error::FromErrno(errno, "mknod " + d.path);
      UniqueFd f = TRY(OpenInRoot(pd.fd(), leaf, O_CREAT | O_WRONLY, 0644, d.path));
      f.reset();
      UniqueFd t = TRY(OpenInRoot(pd.fd(), leaf, O_PATH, 0, d.path));
      TRY(SysMount(d.path.c_str(), FdPath(t.get()).c_str(), nullptr, MS_BIND, nullptr,
                   "bind the host's " + d.path));
      continue;
    }
    if (fchmodat(pd.fd(), leaf.c_str(), d.mode & 07777, 0) != 0)
      return Error::FromErrno(errno, "chmod " + d.path);
    if (fchownat(pd.fd(), leaf.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "chown " + d.path);
  }
  return Ok();
}

// runc's way: after the root switch, a pty from the container's own /dev/ptmx (-> pts/ptmx of
// its devpts instance), so that `tty` inside says /dev/pts/0. The slave is bound on
// /dev/console (when `bind_console`), sized, and returned; the master goes to the parent over
// `ch` and our copy closes. Needs root and no seccomp filter yet (mount).
Result<UniqueFd> OpenTerminal(const ProcessPlan& p, Channel& ch, bool bind_console) {
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master)
    return Error::FromErrno(errno, "open /dev/ptmx in the container for its terminal (the "
                                   "spec needs devpts mounted on /dev/pts with newinstance)");
  if (unlockpt(master.get()) != 0) return Error::FromErrno(errno, "unlockpt of the terminal");
  char name[64];
  if (int e = ptsname_r(master.get(), name, sizeof(name)); e != 0)
    return Error::FromErrno(e, "ptsname of the terminal");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return Error::FromErrno(errno, std::string("open the terminal ") + name);
  if (p.console_height && p.console_width) {
    struct winsize ws = {};
    ws.ws_row = static_cast<unsigned short>(p.console_height);
    ws.ws_col = static_cast<unsigned short>(p.console_width);
    if (ioctl(slave.get(), TIOCSWINSZ, &ws) != 0)
      return Error::FromErrno(errno, "set the terminal size");
  }
  // Root is the container's now: a symlink at /dev/console resolves inside it.
  if (bind_console)
    TRY(SysMount(name, "/dev/console", nullptr, MS_BIND, nullptr,
                 std::string("bind the terminal ") + name + " on /dev/console"));
  TRY(ch.SendFd(Stage::kTerminal, master.get()).Wrap("hand the terminal to shale"));
  return slave;
}

// The mount point of the mount holding `path`: there the walk up meets another mount id.
Result<std::string> MountPointOf(const std::string& path) {
  auto mount_id = [](const std::string& p) -> Result<uint64_t> {
    struct statx stx;
    if (statx(AT_FDCWD, p.c_str(), AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0)
      return Error::FromErrno(errno, "statx " + p);
    if (!(stx.stx_mask & STATX_MNT_ID))
      return Error(Errc::kUnsupported, "statx " + p + ": the kernel reports no mount id");
    return uint64_t{stx.stx_mnt_id};
  };
  char* real = realpath(path.c_str(), nullptr);
  if (!real) return Error::FromErrno(errno, "resolve " + path);
  std::string cur = real;
  free(real);
  uint64_t id = TRY(mount_id(cur));
  while (cur != "/") {
    size_t slash = cur.rfind('/');
    std::string parent = slash == 0 ? "/" : cur.substr(0, slash);
    if (TRY(mount_id(parent)) != id) break;
    cur = std::move(parent);
  }
  return cur;
}

Result<void> SwitchRoot(int root_fd, bool no_pivot, bool host_mount_ns) {
  if (fchdir(root_fd) != 0) return Error::FromErrno(errno, "chdir into the rootfs");
  if (host_mount_ns) {
    if (chroot(".") != 0) return Error::FromErrno(errno, "chroot");
  } else if (!no_pivot) {
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
    // removes the old root without needing a directory for it in the image.
    if (syscall(SYS_pivot_root, ".", ".") != 0) return Error::FromErrno(errno, "pivot_root");
    // With a shared rootfsPropagation the old root's mounts are peers of the host's: made
    // slaves first, the detach does not propagate to the host (runc does the same).
    if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0)
      return Error::FromErrno(errno, "make the old root a slave before unmounting it");
    if (umount2(".", MNT_DETACH) != 0) return Error::FromErrno(errno, "umount the old root");
  } else {
    if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0)
      return Error::FromErrno(errno, "move the rootfs onto /");
    if (chroot(".") != 0) return Error::FromErrno(errno, "chroot");
  }
  if (chdir("/") != 0) return Error::FromErrno(errno, "chdir /");
  return Ok();
}

Result<void> MaskPaths(int root_fd, const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    auto fd = OpenInRoot(root_fd, p, O_PATH, 0, "");
    if (!fd) {
      if (fd.error().code() == Errc::kNotFound) continue;
      return std::move(fd).error().Wrap("mask " + p);
    }
    struct stat st;
    if (fstat(fd->get(), &st) != 0) return Error::FromErrno(errno, "stat " + p);
    FdPath t(fd->get());
    if (S_ISDIR(st.st_mode)) {
      TRY(SysMount("tmpfs", t.c_str(), "tmpfs", MS_RDONLY, "size=0", "tmpfs to mask " + p));
    } else {
      TRY(SysMount("/dev/null", t.c_str(), nullptr, MS_BIND, nullptr, "/dev/null to mask " + p));
    }
  }
  return Ok();
}

Result<void> ReadonlyPaths(int root_fd, const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    auto fd = OpenInRoot(root_fd, p, O_PATH, 0, "");
    if (!fd) {
      if (fd.error().code() == Errc::kNotFound) continue;
      return std::move(fd).error().Wrap("read-only path " + p);
    }
    FdPath t(fd->get());
    TRY(SysMount(t.c_str(), t.c_str(), nullptr, MS_BIND | MS_REC, nullptr, "bind " + p));
    TRY(RemountReadonly(root_fd, p, MS_REC, p));
  }
  return Ok();
}

Result<void> ApplyRlimits(const std::vector<PlannedRlimit>& rls) {
  for (const PlannedRlimit& r : rls) {
    if (setrlimit(r.resource, &r.limit) == 0) continue;
    int err = errno;
    struct rlimit cur;
    getrlimit(r.resource, &cur);
    if (err == EPERM && r.limit.rlim_max > cur.rlim_max)
      return Error(Errc::kPermission,
                   "setrlimit " + r.name + ": cannot raise the hard limit from " +
                       std::to_string(cur.rlim_max) + " to " + std::to_string(r.limit.rlim_max) +
                       " (no CAP_SYS_RESOURCE here); ask for at most " +
                       std::to_string(cur.rlim_max));
    return Error::FromErrno(err, "setrlimit " + r.name);
  }
  return Ok();
}

using CapState = std::unique_ptr<std::remove_pointer_t<cap_t>, FnDeleter<cap_free>>;

Result<void> ApplyUserAndCaps(const ProcessPlan& p) {
  // Bounding set first: dropping needs CAP_SETPCAP, which the user switch may take away.
  int last = static_cast<int>(cap_max_bits()) - 1;
  for (int c = 0; c <= last; ++c) {
    bool keep = false;
    for (cap_value_t k : p.caps.bounding) keep |= (k == c);
    if (!keep && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      return Error::FromErrno(errno, "drop capability " + std::to_string(c) + " from bounding set");
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return Error::FromErrno(errno, "PR_SET_KEEPCAPS");
  if (p.setgroups_denied && !p.additional_gids.empty())
    return Error(Errc::kPermission,
                 "process.user.additionalGids: setgroups is denied in this rootless user "
                 "namespace (one gid mapped); remove additionalGids or map more gids "
                 "(linux.gidMappings through newgidmap, /etc/subgid)");
  if (!p.setgroups_denied && setgroups(p.additional_gids.size(), p.additional_gids.data()) != 0)
    return Error::FromErrno(errno, "setgroups");
  if (setresgid(p.gid, p.gid, p.gid) != 0)
    return Error::FromErrno(errno, "setresgid " + std::to_string(p.gid));
  if (setresuid(p.uid, p.uid, p.uid) != 0)
    return Error::FromErrno(errno, "setresuid " + std::to_string(p.uid));
  CapState caps(cap_init());
  if (!caps) return Error::FromErrno(errno, "cap_init");
  auto set = [&](cap_flag_t flag, const std::vector<cap_value_t>& v) {
    return v.empty() || cap_set_flag(caps.get(), flag, v.size(), v.data(), CAP_SET) == 0;
  };
  if (!set(CAP_EFFECTIVE, p.caps.effective) || !set(CAP_PERMITTED, p.caps.permitted) ||
      !set(CAP_INHERITABLE, p.caps.inheritable))
    return Error::FromErrno(errno, "cap_set_flag");
  if (cap_set_proc(caps.get()) != 0) return Error::FromErrno(errno, "cap_set_proc");
  if (!p.caps.ambient.empty()) {
    // The kernel raises an ambient capability only if it is permitted and inheritable;
    // specs often list it in ambient alone (`crun spec`'s default): crun and runc go on
    // without it, and so do we.
    for (cap_value_t c : p.caps.ambient)
      if (cap_set_ambient(c, CAP_SET) != 0 && errno != EPERM)
        return Error::FromErrno(errno, std::string("raise ambient capability ") + cap_to_name(c));
  }
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return Error::FromErrno(errno, "PR_SET_KEEPCAPS");
  return Ok();
}

Result<void> SetupStdio(const ProcessPlan& p, int terminal_fd) {
  if (terminal_fd >= 0) {
    if (ioctl(terminal_fd, TIOCSCTTY, 0) != 0)
      return Error::FromErrno(errno, "make the terminal the controlling terminal");
    for (int i = 0; i < 3; ++i)
      if (dup2(terminal_fd, i) < 0) return Error::FromErrno(errno, "dup2 terminal");
    return Ok();
  }
  // Move the sources above 2 first, so that e.g. {out=2, err=1} does not clobber itself.
  int tmp[3] = {-1, -1, -1};
  for (int i = 0; i < 3; ++i) {
    if (p.stdio[i] < 0) continue;
    tmp[i] = fcntl(p.stdio[i], F_DUPFD_CLOEXEC, 3);
    if (tmp[i] < 0) return Error::FromErrno(errno, "dup stdio fd " + std::to_string(p.stdio[i]));
  }
  for (int i = 0; i < 3; ++i)
    if (tmp[i] >= 0 && dup2(tmp[i], i) < 0) return Error::FromErrno(errno, "dup2 stdio");
  return Ok();
}

// execvpe in the container's PATH (from the spec's env, not ours). Returns only on failure.
Error ExecProcess(const ProcessPlan& p) {
  std::vector<char*> argv, envp;
  for (const auto& a : p.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : p.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string& file = p.args[0];
  if (file.find('/') != std::string::npos) {
    execve(file.c_str(), argv.data(), envp.data());
    int err = errno;
    if (err == ENOENT)
      return Error(Errc::kNotFound, "exec \"" + file + "\": no such file or directory");
    return Error::FromErrno(err, "exec \"" + file + "\"");
  }
  bool saw_eacces = false;
  std::string candidate;
  size_t i = 0;
  while (i <= p.path.size()) {
    size_t j = p.path.find(':', i);
    if (j == std::string::npos) j = p.path.size();
    std::string_view dir(p.path.data() + i, j - i);
    candidate.assign(dir.empty() ? "." : dir);
    candidate += '/';
    candidate += file;
    execve(candidate.c_str(), argv.data(), envp.data());
    if (errno == EACCES) {
      saw_eacces = true;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      return Error::FromErrno(errno, "exec \"" + candidate + "\"");
    }
    i = j + 1;
  }
  if (saw_eacces) return Error::FromErrno(EACCES, "exec \"" + file + "\"");
  return Error(Errc::kNotFound, "exec \"" + file + "\": executable file not found in $PATH");
}

int ErrnoFor(const Error& e) {
  if (e.sys_errno()) return e.sys_errno();
  switch (e.code()) {
    case Errc::kNotFound: return ENOENT;
    case Errc::kPermission: return EACCES;
    case Errc::kInvalidArgument: return EINVAL;
    default: return EIO;
  }
}

[[noreturn]] void Fail(Channel& ch, const Error& e) {
  // After `shale-runc create` exited nobody reads the channel: the container's stderr is
  // where the error can still be seen.
  if (!ch.Send(Stage::kExecFailed, ErrnoFor(e), e.message())) {
    std::string line = "shale: " + e.message() + "\n";
    (void)!write(2, line.data(), line.size());
  }
  _exit(e.code() == Errc::kNotFound ? 127 : 126);
}

// The process part shared by Run and Exec: rlimits, user, capabilities, no_new_privs, cwd,
// stdio (the pty slave `terminal_fd` if >= 0), fds, exec.
// runc's CVE-2024-21626 lesson: the cwd is resolved inside the container's root (never
// through a leaked fd or a symlink out of it), and checked to be reachable from "/" after.
// Opened before the seccomp filter (a profile need not allow openat2) and entered after the
// user switch, so that the user's permission to enter it is what counts.
Result<UniqueFd> OpenCwd(const std::string& cwd) {
  UniqueFd slash(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!slash) return Error::FromErrno(errno, "open / for the cwd");
  return OpenInRoot(slash.get(), cwd, O_PATH | O_DIRECTORY, 0, "/").Wrap("cwd " + cwd);
}

Result<void> EnterCwd(const UniqueFd& dir, const std::string& cwd) {
  if (fchdir(dir.get()) != 0) return Error::FromErrno(errno, "chdir to cwd " + cwd);
  // Belt and braces (RESOLVE_IN_ROOT already kept it inside): the kernel says
  // "(unreachable)" for a cwd outside our root, glibc ENOENT. Other errors (a seccomp
  // profile refusing getcwd) say nothing about where we are.
  char buf[4096];
  if (getcwd(buf, sizeof(buf)) ? buf[0] != '/' : errno == ENOENT)
    return Error(Errc::kPermission, "cwd " + cwd + " is outside the container's root");
  return Ok();
}

// `listener` receives the notify fd when the filter has SCMP_ACT_NOTIFY rules.
Result<void> PrepareProcess(const ProcessPlan& p, int terminal_fd, UniqueFd* listener) {
  // Every fd above stderr and the preserved ones (the channel included) closes at execve:
  // no host fd leaks in. Before the seccomp filter, which need not allow close_range; what
  // is opened after is O_CLOEXEC.
  unsigned first = 3 + static_cast<unsigned>(p.preserve_fds);
  if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    return Error::FromErrno(errno, "close_range");
  for (int fd = 3; fd < static_cast<int>(first); ++fd)
    if (fcntl(fd, F_SETFD, 0) != 0 && errno != EBADF)
      return Error::FromErrno(errno, "keep fd " + std::to_string(fd) + " open (--preserve-fds)");
  UniqueFd cwd = TRY(OpenCwd(p.cwd));
  TRY(ApplyRlimits(p.rlimits));
  if (p.oom_score_adj) {
    UniqueFd f(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
    std::string v = std::to_string(*p.oom_score_adj);
    if (!f || write(f.get(), v.data(), v.size()) != static_cast<ssize_t>(v.size()))
      return Error::FromErrno(errno, "set oom_score_adj to " + v);
  }
  if (p.personality && ::personality(*p.personality) < 0)
    return Error::FromErrno(errno, "linux.personality: personality(" +
                                       std::to_string(*p.personality) + ")");
  if (p.scheduler) {
    // struct sched_attr as of Linux 5.3 (util clamps unused: 0).
    struct {
      uint32_t size, sched_policy;
      uint64_t sched_flags;
      int32_t sched_nice;
      uint32_t sched_priority;
      uint64_t sched_runtime, sched_deadline, sched_period;
      uint32_t sched_util_min, sched_util_max;
    } attr = {};
    attr.size = sizeof(attr);
    attr.sched_policy = p.scheduler->policy;
    attr.sched_flags = p.scheduler->flags;
    attr.sched_nice = p.scheduler->nice;
    attr.sched_priority = p.scheduler->priority;
    attr.sched_runtime = p.scheduler->runtime;
    attr.sched_deadline = p.scheduler->deadline;
    attr.sched_period = p.scheduler->period;
    if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0)
      return Error::FromErrno(errno, "process.scheduler: sched_setattr");
  }
  if (p.io_priority && syscall(SYS_ioprio_set, 1 /*IOPRIO_WHO_PROCESS*/, 0, *p.io_priority) != 0)
    return Error::FromErrno(errno, "process.ioPriority: ioprio_set");
  // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN: do it before the caps go.
  if (!p.no_new_privs) *listener = TRY(LoadSeccomp(p.seccomp));
  if (auto r = ApplyUserAndCaps(p); !r) {
    if (p.seccomp.empty() || p.no_new_privs) return r;
    return std::move(r).error().Wrap("switch user and capabilities under the seccomp filter "
                                     "(does the profile allow setresuid, capset, prctl?)");
  }
  if (p.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return Error::FromErrno(errno, "PR_SET_NO_NEW_PRIVS");
  TRY(EnterCwd(cwd, p.cwd));
  cwd.reset();
  TRY(SetupStdio(p, terminal_fd));
  umask(p.umask);
  // With a listener the notify fd must reach the runtime before kReadyToExec (create returns
  // then, and the agent must have it by the time the container runs): the filter with
  // no_new_privs goes in here, as late as that allows (runc's order), not in LateSeccomp.
  if (p.no_new_privs && p.seccomp.listener) *listener = TRY(LoadSeccomp(p.seccomp));
  return Ok();
}

// Hands the notify fd to the runtime (Stage::kSeccompFd) and closes our copy: the agent
// holds the only one, so the notified syscalls fail with ENOSYS once it is gone instead of
// waiting on us.
Result<void> HandOverListener(Channel& ch, UniqueFd listener) {
  if (!listener) return Ok();
  return ch.SendFd(Stage::kSeccompFd, listener.get());
}

// With no_new_privs the filter goes in last, so it need only allow execve and what the
// process itself does (a failed execve is still reported if it allows write). A filter with
// a listener was loaded in PrepareProcess.
Result<void> LateSeccomp(const ProcessPlan& p) {
  if (!p.no_new_privs || p.seccomp.listener) return Ok();
  UniqueFd none = TRY(LoadSeccomp(p.seccomp));
  return Ok();
}

// A new network namespace starts with `lo` down; docker (libnetwork) brings it up in every
// one it makes, so 127.0.0.1 works even with --network none.
Result<void> BringUpLoopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error::FromErrno(errno, "socket for configuring lo");
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0)
    return Error::FromErrno(errno, "read the flags of lo in the container's network namespace");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0)
    return Error::FromErrno(errno, "bring up lo in the container's network namespace");
  return Ok();
}

// Every signal back to its default and none blocked: a caller's SIG_IGN (the monitor ignores
// SIGPIPE) or mask would otherwise survive execve into the container (runc resets them too).
Result<void> ResetSignals() {
  for (int s = 1; s < NSIG; ++s) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    (void)::signal(s, SIG_DFL);  // EINVAL for the few numbers glibc reserves: nothing to do
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0)
    return Error::FromErrno(errno, "unblock signals");
  return Ok();
}

Result<void> InitSteps(const InitConfig& c, Channel& ch, nlohmann::json& state,
                       UniqueFd* listener) {
  TRY(cgroup::JoinSelf(c.cgroup_tasks));  // first: all it does is then accounted there
  if (setsid() < 0) return Error::FromErrno(errno, "setsid");
  TRY(ResetSignals());
  if (c.die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    return Error::FromErrno(errno, "PR_SET_PDEATHSIG");
  for (const auto& [fd, type] : c.join_ns)
    if (setns(fd, type) != 0) return Error::FromErrno(errno, "setns");
  if (c.in_user_ns) {
    // Until now we were the overflow id there; root of the namespace owns the mounts made.
    if (setresgid(0, 0, 0) != 0)
      return Error::FromErrno(errno, "setresgid 0 in the user namespace (is gid 0 mapped?)");
    if (setresuid(0, 0, 0) != 0)
      return Error::FromErrno(errno, "setresuid 0 in the user namespace (is uid 0 mapped?)");
  }
  if (c.new_cgroupns && unshare(CLONE_NEWCGROUP) != 0)
    return Error::FromErrno(errno, "unshare the cgroup namespace");
  if (c.new_net) TRY(BringUpLoopback());
  if (c.new_uts && !c.hostname.empty() &&
      sethostname(c.hostname.data(), c.hostname.size()) != 0)
    return Error::FromErrno(errno, "sethostname " + c.hostname);
  if (c.new_uts && !c.domainname.empty() &&
      setdomainname(c.domainname.data(), c.domainname.size()) != 0)
    return Error::FromErrno(errno, "setdomainname " + c.domainname);
  umask(0);
  // rootfsPropagation as runc applies it: to "/" before the rootfs is bound (so that, shared
  // or slave, the container sees the host's later mounts), and again to the new "/" after the
  // switch. An unbindable "/" could not be bound: that one only after the switch.
  unsigned long before = c.root_propagation ? c.root_propagation : MS_REC | MS_PRIVATE;
  if (before & MS_UNBINDABLE) before = MS_REC | MS_PRIVATE;
  if (!c.host_mount_ns) TRY(SysMount(nullptr, "/", nullptr, before, nullptr, "propagation of /"));
  if (!c.host_mount_ns && (before & MS_SHARED)) {
    // pivot_root refuses a new root whose parent mount is shared.
    std::string parent = TRY(MountPointOf(c.rootfs));
    TRY(SysMount(nullptr, parent.c_str(), nullptr, MS_PRIVATE, nullptr,
                 "make " + parent + " (the mount holding the rootfs) private"));
  }
  TRY(SysMount(c.rootfs.c_str(), c.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr,
               "bind the rootfs " + c.rootfs + " on itself"));
  // In the host's mount namespace: the container's mounts stay off the host's peers.
  if (c.host_mount_ns)
    TRY(SysMount(nullptr, c.rootfs.c_str(), nullptr, MS_PRIVATE | MS_REC, nullptr,
                 "make the bind of the rootfs " + c.rootfs + " private"));
  Dir root = TRY(Dir::Open(c.rootfs));
  bool has_dev = false;
  for (const PlannedMount& m : c.mounts) {
    TRY(DoMount(root, m));
    if (m.destination == "/dev") has_dev = true;
  }
  bool console = has_dev && c.process.terminal;
  if (has_dev) TRY(SetupDev(root, console));
  TRY(MakeDevices(root, c.devices));
  if (c.sync_hooks) {
    TRY(ch.Send(Stage::kMountsDone));
    Message m = TRY(ch.Receive());
    if (m.eof || m.stage != Stage::kHooksDone)
      return Error(Errc::kInternal, "stage channel: expected kHooksDone");
    state["pid"] = TRY(ParseInt(m.text, 1, INT32_MAX, "the pid on the stage channel"));
  }
  TRY(RunHooks(c.create_container, state.dump(), "createContainer"));
  TRY(SwitchRoot(root.fd(), c.no_pivot, c.host_mount_ns));
  if (c.root_propagation)
    TRY(SysMount(nullptr, "/", nullptr, c.root_propagation, nullptr,
                 "linux.rootfsPropagation of the container's /"));
  UniqueFd terminal;
  if (c.process.terminal) terminal = TRY(OpenTerminal(c.process, ch, console));
  UniqueFd slash(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!slash) return Error::FromErrno(errno, "open / of the container");
  for (const auto& [key, value] : c.sysctl) {
    UniqueFd f = TRY(OpenInRoot(slash.get(), "proc/sys/" + key, O_WRONLY, 0, "/"));
    if (write(f.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
      return Error::FromErrno(errno, "sysctl " + key + "=" + value);
  }
  TRY(MaskPaths(slash.get(), c.masked_paths));
  TRY(ReadonlyPaths(slash.get(), c.readonly_paths));
  if (c.root_readonly) TRY(RemountReadonly(slash.get(), "/", 0, "/"));
  return PrepareProcess(c.process, terminal.get(), listener);
}

}  // namespace

[[noreturn]] void RunInit(const InitConfig& cfg, Channel& ch) {
  auto go = ch.Expect(Stage::kStart);
  if (!go) _exit(126);
  nlohmann::json state = cfg.state;
  UniqueFd listener;
  if (auto r = InitSteps(cfg, ch, state, &listener); !r) Fail(ch, r.error());
  if (auto r = HandOverListener(ch, std::move(listener)); !r) Fail(ch, r.error());
  if (auto r = ch.Send(Stage::kReadyToExec); !r) _exit(126);
  // `created`: wait here for start.
  if (cfg.release_fd >= 0) {
    char b;
    ssize_t n;
    do {
      n = read(cfg.release_fd, &b, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) Fail(ch, Error::FromErrno(errno, "read the exec fifo"));
    close(cfg.release_fd);
  } else if (auto r = ch.Expect(Stage::kExec); !r) {
    _exit(126);
  }
  state["status"] = "running";
  if (auto r = RunHooks(cfg.start_container, state.dump(), "startContainer"); !r)
    Fail(ch, r.error());
  if (auto r = LateSeccomp(cfg.process); !r) Fail(ch, r.error());
  Fail(ch, ExecProcess(cfg.process));
}

[[noreturn]] void RunExecInit(const std::vector<std::pair<int, int>>& join_ns,
                              const std::vector<std::string>& cgroup_tasks, const ProcessPlan& p,
                              Channel& ch) {
  auto go = ch.Expect(Stage::kStart);
  if (!go) _exit(126);
  if (auto r = cgroup::JoinSelf(cgroup_tasks); !r) Fail(ch, r.error());
  if (setsid() < 0) Fail(ch, Error::FromErrno(errno, "setsid"));
  if (auto r = ResetSignals(); !r) Fail(ch, r.error());
  for (const auto& [fd, type] : join_ns)
    if (setns(fd, type) != 0) Fail(ch, Error::FromErrno(errno, "setns into the container"));
  // Joining the mount namespace put our root at the container's: its /dev/ptmx is its own.
  UniqueFd terminal;
  if (p.terminal) {
    auto t = OpenTerminal(p, ch, /*bind_console=*/false);
    if (!t) Fail(ch, t.error());
    terminal = std::move(*t);
  }
  UniqueFd listener;
  if (auto r = PrepareProcess(p, terminal.get(), &listener); !r) Fail(ch, r.error());
  if (auto r = HandOverListener(ch, std::move(listener)); !r) Fail(ch, r.error());
  if (auto r = ch.Send(Stage::kReadyToExec); !r) _exit(126);
  if (auto r = LateSeccomp(p); !r) Fail(ch, r.error());
  Fail(ch, ExecProcess(p));
}

[[noreturn]] void RunExecHelper(int user_fd, int pid_fd,
                                const std::vector<std::pair<int, int>>& join_ns,
                                const std::vector<std::string>& cgroup_tasks,
                                const ProcessPlan& p, Channel& ch) {
  if (setns(user_fd, CLONE_NEWUSER) != 0)
    Fail(ch, Error::FromErrno(errno, "setns into the container's user namespace"));
  if (pid_fd >= 0 && setns(pid_fd, CLONE_NEWPID) != 0)
    Fail(ch, Error::FromErrno(errno, "setns into the container's pid namespace"));
  pid_t child = fork();
  if (child < 0) Fail(ch, Error::FromErrno(errno, "fork the exec'd process"));
  if (child == 0) RunExecInit(join_ns, cgroup_tasks, p, ch);
  if (auto r = ch.Send(Stage::kChildPid, 0, std::to_string(child)); !r) _exit(126);
  _exit(0);
}

// --- Parent side: planning ---

namespace {

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

Result<std::vector<cap_value_t>> CapValues(const std::vector<std::string>& names,
                                           const char* set) {
  std::vector<cap_value_t> out;
  for (const std::string& n : names) {
    cap_value_t v;
    std::string lower = n;
    for (char& ch : lower) ch = static_cast<char>(tolower(ch));
    if (cap_from_name(lower.c_str(), &v) != 0)
      return Error(Errc::kInvalidArgument,
                   std::string("process.capabilities.") + set + ": unknown capability " + n);
    if (v >= static_cast<cap_value_t>(cap_max_bits())) continue;  // unknown to this kernel
    out.push_back(v);
  }
  return out;
}

// The kernel's values (uapi linux/sched.h, linux/ioprio.h, linux/personality.h), spelled
// out: those headers clash with glibc's <sched.h>.
struct NamedValue {
  const char* name;
  uint64_t value;
};
constexpr NamedValue kSchedPolicies[] = {
    {"SCHED_OTHER", 0}, {"SCHED_FIFO", 1},  {"SCHED_RR", 2},
    {"SCHED_BATCH", 3}, {"SCHED_IDLE", 5},  {"SCHED_DEADLINE", 6}};
constexpr NamedValue kSchedFlags[] = {
    {"SCHED_FLAG_RESET_ON_FORK", 0x01}, {"SCHED_FLAG_RECLAIM", 0x02},
    {"SCHED_FLAG_DL_OVERRUN", 0x04},    {"SCHED_FLAG_KEEP_POLICY", 0x08},
    {"SCHED_FLAG_KEEP_PARAMS", 0x10},   {"SCHED_FLAG_UTIL_CLAMP_MIN", 0x20},
    {"SCHED_FLAG_UTIL_CLAMP_MAX", 0x40}};
constexpr NamedValue kIoClasses[] = {
    {"IOPRIO_CLASS_RT", 1}, {"IOPRIO_CLASS_BE", 2}, {"IOPRIO_CLASS_IDLE", 3}};
constexpr NamedValue kPersonalities[] = {{"LINUX", 0x0000}, {"LINUX32", 0x0008}};

template <size_t N>
std::optional<uint64_t> ValueOf(const NamedValue (&table)[N], std::string_view name) {
  for (const NamedValue& v : table)
    if (name == v.name) return v.value;
  return std::nullopt;
}

Result<ProcessPlan::Scheduler> PlanScheduler(const oci::Process::Scheduler& s) {
  ProcessPlan::Scheduler out;
  auto policy = ValueOf(kSchedPolicies, s.policy);
  if (!policy)
    return Error(Errc::kInvalidArgument,
                 "process.scheduler.policy: \"" + s.policy + "\" is not a policy this runtime "
                 "knows (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR, "
                 "SCHED_DEADLINE; SCHED_ISO is not in Linux)");
  out.policy = static_cast<uint32_t>(*policy);
  for (const std::string& f : s.flags) {
    auto v = ValueOf(kSchedFlags, f);
    if (!v) return Error(Errc::kInvalidArgument, "process.scheduler.flags: unknown flag " + f);
    out.flags |= *v;
  }
  out.nice = s.nice.value_or(0);
  if (out.nice < -20 || out.nice > 19)
    return Error(Errc::kInvalidArgument, "process.scheduler.nice: " + std::to_string(out.nice) +
                                             " is outside -20..19");
  bool realtime = out.policy == 1 || out.policy == 2;
  int32_t prio = s.priority.value_or(0);
  if (realtime ? (prio < 1 || prio > 99) : prio != 0)
    return Error(Errc::kInvalidArgument,
                 "process.scheduler.priority: " + std::to_string(prio) +
                     (realtime ? " is outside 1..99 for " : " must be 0 for ") + s.policy);
  out.priority = static_cast<uint32_t>(prio);
  bool deadline = out.policy == 6;
  if (deadline != (s.runtime || s.deadline || s.period))
    return Error(Errc::kInvalidArgument,
                 deadline ? "process.scheduler: SCHED_DEADLINE needs runtime, deadline and period"
                          : "process.scheduler: runtime, deadline and period are for "
                            "SCHED_DEADLINE only");
  out.runtime = s.runtime.value_or(0);
  out.deadline = s.deadline.value_or(0);
  out.period = s.period.value_or(0);
  return out;
}

}  // namespace

Result<ProcessPlan> PlanProcess(const oci::Process& p, const oci::Capabilities& caps,
                                bool no_new_privs, const std::optional<oci::Seccomp>& seccomp,
                                const std::optional<oci::Personality>& personality,
                                SeccompCache* seccomp_cache) {
  ProcessPlan plan;
  if (p.scheduler) plan.scheduler = TRY(PlanScheduler(*p.scheduler));
  if (p.io_priority) {
    auto cls = ValueOf(kIoClasses, p.io_priority->io_class);
    if (!cls)
      return Error(Errc::kInvalidArgument, "process.ioPriority.class: \"" +
                                               p.io_priority->io_class +
                                               "\" is not IOPRIO_CLASS_RT, _BE or _IDLE");
    if (p.io_priority->priority < 0 || p.io_priority->priority > 7)
      return Error(Errc::kInvalidArgument, "process.ioPriority.priority: " +
                                               std::to_string(p.io_priority->priority) +
                                               " is outside 0..7");
    plan.io_priority = static_cast<int>(*cls << 13) | p.io_priority->priority;
  }
  if (personality) {
    auto domain = ValueOf(kPersonalities, personality->domain);
    if (!domain)
      return Error(Errc::kInvalidArgument, "linux.personality.domain: \"" + personality->domain +
                                               "\" is not LINUX or LINUX32");
    if (!personality->flags.empty())
      return Error(Errc::kUnsupported, "linux.personality.flags: the runtime spec defines no "
                                       "flags yet; remove " + personality->flags[0]);
    plan.personality = static_cast<unsigned long>(*domain);
  }
  if (seccomp)
    plan.seccomp = TRY(CompileSeccompCached(*seccomp, seccomp_cache).Wrap("linux.seccomp"));
  if (p.args.empty()) return Error(Errc::kInvalidArgument, "process.args is empty");
  for (const oci::Rlimit& r : p.rlimits) {
    const RlimitName* found = nullptr;
    for (const RlimitName& n : kRlimits)
      if (r.type == n.name) found = &n;
    if (!found) return Error(Errc::kInvalidArgument, "process.rlimits: unknown type " + r.type);
    if (r.soft > r.hard)
      return Error(Errc::kInvalidArgument, "process.rlimits: " + r.type + " soft limit " +
                                               std::to_string(r.soft) + " is above its hard limit " +
                                               std::to_string(r.hard));
    plan.rlimits.push_back({r.type, found->resource, {r.soft, r.hard}});
  }
  plan.uid = p.user.uid;
  plan.gid = p.user.gid;
  plan.additional_gids.assign(p.user.additional_gids.begin(), p.user.additional_gids.end());
  plan.caps.bounding = TRY(CapValues(caps.bounding, "bounding"));
  plan.caps.effective = TRY(CapValues(caps.effective, "effective"));
  plan.caps.permitted = TRY(CapValues(caps.permitted, "permitted"));
  plan.caps.inheritable = TRY(CapValues(caps.inheritable, "inheritable"));
  plan.caps.ambient = TRY(CapValues(caps.ambient, "ambient"));
  plan.no_new_privs = no_new_privs;
  if (p.user.umask) plan.umask = static_cast<mode_t>(*p.user.umask & 07777);
  plan.oom_score_adj = p.oom_score_adj;
  plan.terminal = p.terminal;
  plan.console_height = p.console_height;
  plan.console_width = p.console_width;
  plan.cwd = p.cwd.empty() ? "/" : p.cwd;
  plan.args = p.args;
  plan.env = p.env;
  plan.path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& e : p.env)
    if (StartsWith(e, "PATH=")) plan.path = e.substr(5);
  return plan;
}

bool SharesHostMountNs(const oci::RuntimeSpec& spec) {
  return std::none_of(spec.linux.namespaces.begin(), spec.linux.namespaces.end(),
                      [](const oci::Namespace& n) { return n.type == "mount" || n.type == "mnt"; });
}

Result<void> DetachRootfsBind(const std::string& rootfs) {
  char* real = realpath(rootfs.c_str(), nullptr);
  if (!real) return errno == ENOENT ? Ok() : Error::FromErrno(errno, "resolve " + rootfs);
  std::string path = real;
  free(real);
  std::string info = TRY(ReadFile("/proc/self/mountinfo"));
  // mountinfo: id parent major:minor root mount-point ...; the bind of a directory on itself
  // has that directory (not "/") as its root, or sits on top of the rootfs's own mount.
  int at_path = 0;
  std::string top_root;
  for (std::string_view line : Split(info, '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    if (f.size() > 4 && f[4] == path) {
      ++at_path;
      top_root = f[3];
    }
  }
  if (at_path >= 2 || (at_path == 1 && top_root != "/"))
    if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL)
      return Error::FromErrno(errno, "unmount the container's mounts under " + path);
  return Ok();
}

Result<InitConfig> PlanInit(const oci::RuntimeSpec& spec, const RunOptions& opts,
                            bool cgroup_v2) {
  InitConfig c;
  c.cgroup_v2 = cgroup_v2;
  c.process = TRY(PlanProcess(spec.process, spec.process.capabilities,
                              spec.process.no_new_privileges, spec.linux.seccomp,
                              spec.linux.personality, opts.seccomp_cache));
  if (spec.root.path.empty() || spec.root.path[0] != '/')
    return Error(Errc::kInvalidArgument,
                 "root.path \"" + spec.root.path + "\" must be an absolute path");
  c.rootfs = spec.root.path;
  c.root_readonly = spec.root.readonly;
  c.no_pivot = opts.no_pivot;
  c.die_with_parent = opts.die_with_parent;
  if ((!spec.process.selinux_label.empty() || !spec.linux.mount_label.empty()) &&
      access("/sys/fs/selinux/enforce", F_OK) == 0)
    return Error(Errc::kUnsupported, "process.selinuxLabel / linux.mountLabel: shale does not "
                                     "apply SELinux labels, and SELinux is enabled here");
  c.hostname = spec.hostname;
  c.domainname = spec.domainname;
  c.process.preserve_fds = opts.preserve_fds;
  c.host_mount_ns = SharesHostMountNs(spec);
  if (c.host_mount_ns && !spec.linux.rootfs_propagation.empty())
    return Error(Errc::kInvalidArgument,
                 "linux.rootfsPropagation needs a mount namespace of the container's own (it "
                 "would change the host's mounts): add {\"type\": \"mount\"} to "
                 "linux.namespaces or remove linux.rootfsPropagation");
  if (!spec.linux.rootfs_propagation.empty()) {
    MountOptions o = ParseMountOptions("bind", {spec.linux.rootfs_propagation});
    if (!o.propagation)
      return Error(Errc::kInvalidArgument,
                   "linux.rootfsPropagation \"" + spec.linux.rootfs_propagation +
                       "\": expected one of [r]private, [r]slave, [r]shared, [r]unbindable");
    c.root_propagation = o.propagation;
  }
  for (const auto& [key, value] : spec.linux.sysctl) {
    if (key.empty() || key.find('/') != std::string::npos || key.find("..") != std::string::npos)
      return Error(Errc::kInvalidArgument, "linux.sysctl: invalid key \"" + key + "\"");
    std::string path = key;
    for (char& ch : path)
      if (ch == '.') ch = '/';
    c.sysctl.emplace_back(path, value);
  }
  c.create_container = spec.hooks.create_container;
  c.start_container = spec.hooks.start_container;
  c.sync_hooks = !spec.hooks.prestart.empty() || !spec.hooks.create_runtime.empty() ||
                 !spec.hooks.create_container.empty() || !spec.hooks.start_container.empty();
  bool new_user = false;
  bool own_net = false;  // a network namespace not the host's: made here or joined by path
  for (const oci::Namespace& n : spec.linux.namespaces) {
    if (n.type == "network") own_net = true;
    if (n.type == "user") c.in_user_ns = true;
    if (n.type == "user" && n.path.empty()) new_user = true;
    if (!n.path.empty()) continue;
    if (n.type == "uts") c.new_uts = true;
    if (n.type == "network") c.new_net = true;
    if (n.type == "cgroup") c.new_cgroupns = true;
  }
  for (const oci::Mount& m : spec.mounts) {
    if (m.destination.empty() || m.destination[0] != '/')
      return Error(Errc::kInvalidArgument,
                   "mount destination \"" + m.destination + "\" must be absolute");
    PlannedMount pm;
    pm.destination = m.destination;
    pm.source = m.source;
    pm.type = m.type;
    pm.options = ParseMountOptions(m.type, m.options);
    pm.idmap = TRY(PlanMountIdmap(m, pm.options, spec, opts.rootless));
    if (m.type == "cgroup" || m.type == "cgroup2") {
      // cgroup2 hosts give the container the cgroupfs; on v1 the container sees none (no
      // view of the host's controller trees).
      if (!cgroup_v2) continue;
      pm.type = "cgroup2";
      pm.source = "cgroup";
    }
    if (m.type == "sysfs" && !own_net) {
      // sysfs shows the mounting process's network namespace: with the host network, bind
      // the host's /sys read-only instead.
      pm.type.clear();
      pm.source = "/sys";
      pm.options = ParseMountOptions("bind", {"rbind", "ro", "nosuid", "noexec", "nodev"});
    }
    if (pm.options.bind) {
      struct stat st;
      if (stat(pm.source.c_str(), &st) != 0)
        return Error::FromErrno(errno, "bind mount source " + pm.source + " for " +
                                           m.destination);
      pm.source_is_file = !S_ISDIR(st.st_mode);
      pm.type.clear();
    }
    c.mounts.push_back(std::move(pm));
  }
  for (const oci::Device& d : spec.linux.devices) {
    if (d.path.empty() || d.path[0] != '/')
      return Error(Errc::kInvalidArgument, "linux.devices: path \"" + d.path + "\" must be absolute");
    mode_t type;
    if (d.type == "c" || d.type == "u") type = S_IFCHR;
    else if (d.type == "b") type = S_IFBLK;
    else if (d.type == "p") type = S_IFIFO;
    else return Error(Errc::kInvalidArgument, "linux.devices: " + d.path + ": unknown type \"" + d.type + "\"");
    if (d.major < 0 || d.minor < 0 || d.major > 0xfff || d.minor > 0xfffff)
      return Error(Errc::kInvalidArgument, "linux.devices: " + d.path + ": major/minor out of range");
    c.devices.push_back({d.path, type | static_cast<mode_t>(d.file_mode.value_or(0666) & 07777),
                         makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor)),
                         d.uid.value_or(0), d.gid.value_or(0)});
  }
  if (new_user && (spec.linux.uid_mappings.empty() || spec.linux.gid_mappings.empty()))
    return Error(Errc::kInvalidArgument,
                 "linux.namespaces: a new user namespace needs linux.uidMappings and "
                 "linux.gidMappings");
  if (!new_user && (!spec.linux.uid_mappings.empty() || !spec.linux.gid_mappings.empty()))
    return Error(Errc::kInvalidArgument,
                 "linux.uidMappings/gidMappings are set but linux.namespaces has no new user "
                 "namespace");
  c.masked_paths = spec.linux.masked_paths;
  c.readonly_paths = spec.linux.readonly_paths;
  return c;
}

}  // namespace shale::runtime
