// Integration tests: real containers from a busybox rootfs on a private tmpfs (as root).
#include "runtime/runtime.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/init.h"
#include "runtime/linux_mount.h"
#include "runtime/state.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runtime {
namespace {

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "shale-rt-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    rootfs_ = tmp_.path() + "/rootfs";
    ASSERT_EQ(mkdir(rootfs_.c_str(), 0755), 0);
    // A tmpfs rootfs: its mount root is "/", so mountinfo inside shows no host path.
    ASSERT_EQ(mount("tmpfs", rootfs_.c_str(), "tmpfs", 0, "mode=755"), 0) << strerror(errno);
    mounted_ = true;
    for (const char* d : {"bin", "proc", "dev", "sys", "tmp", "etc", "mnt"})
      ASSERT_EQ(mkdir((rootfs_ + "/" + d).c_str(), 0755), 0);
    auto bb = ReadFile("/bin/busybox");
    ASSERT_TRUE(bb);
    ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/bin/busybox", *bb, 0755));
    for (const char* l : {"sh", "cat", "hostname", "echo", "true", "sleep", "ls", "grep", "stty",
                          "seq", "head", "id", "tty", "mknod", "unshare", "mount", "ln",
                          "tr", "wc", "rm", "ping", "umount"})
      ASSERT_EQ(symlink("busybox", (rootfs_ + "/bin/" + l).c_str()), 0);
    cgroups_path_ = "shale-test/" + RandomHexId(16);
  }

  void TearDown() override {
    for (pid_t p : children_) {
      kill(p, SIGKILL);
      (void)Wait(p);
    }
    auto rm = RemoveCgroup(cgroups_path_);
    EXPECT_TRUE(rm) << rm.error().message();
    if (mounted_) umount2(rootfs_.c_str(), MNT_DETACH);
  }

  oci::RuntimeSpec Spec(std::vector<std::string> args) {
    oci::RuntimeSpec s;
    s.process.args = std::move(args);
    s.process.env = {"PATH=/bin", "HOME=/"};
    s.process.capabilities.bounding = oci::DefaultCapabilities();
    s.process.capabilities.effective = oci::DefaultCapabilities();
    s.process.capabilities.permitted = oci::DefaultCapabilities();
    s.root.path = rootfs_;
    s.hostname = "shaletest";
    s.mounts = oci::DefaultLinuxMounts();
    s.linux.namespaces = {{"pid", ""}, {"network", ""}, {"ipc", ""}, {"uts", ""}, {"mount", ""}};
    s.linux.cgroups_path = cgroups_path_;
    s.linux.masked_paths = oci::DefaultMaskedPaths();
    s.linux.readonly_paths = oci::DefaultReadonlyPaths();
    return s;
  }

  // Runs to completion, capturing stdout and stderr; returns {exit code, output}.
  std::pair<int, std::string> RunCapture(const oci::RuntimeSpec& spec) {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    UniqueFd r(p[0]), w(p[1]);
    RunOptions o;
    o.container_id = "test";
    o.stdio.out = w.get();
    o.stdio.err = w.get();
    auto st = runtime::Run(spec, o);
    w.reset();
    if (!st) {
      ADD_FAILURE() << st.error().message();
      return {-1, ""};
    }
    std::string out = *ReadAll(r.get(), "pipe");
    auto code = Wait(st->pid);
    EXPECT_TRUE(code);
    return {code.value_or(-1), out};
  }

  ScopedTempDir tmp_;
  std::string rootfs_, cgroups_path_;
  bool mounted_ = false;
  std::vector<pid_t> children_;
};

TEST_F(RuntimeTest, IsolationBasics) {
  auto [code, out] = RunCapture(Spec(
      {"sh", "-c",
       "hostname; echo pid=$$; grep CapEff /proc/self/status; ls /proc/self/fd | tr '\\n' ' ';"
       " echo; cat /proc/self/mountinfo; ls /dev; cat /proc/kcore | head -c 1; echo kcore=$?"}));
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(Split(out, '\n')[0], "shaletest") << out;
  EXPECT_NE(out.find("pid=1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("CapEff:\t00000000a80425fb"), std::string::npos) << out;
  // Only stdio and ls's own directory fd: no host fd leaked in.
  EXPECT_NE(out.find("0 1 2 3 \n"), std::string::npos) << out;
  EXPECT_EQ(out.find(tmp_.path()), std::string::npos) << out;
  EXPECT_NE(out.find("urandom"), std::string::npos) << out;
  EXPECT_NE(out.find(" /sys ro,"), std::string::npos) << out;
}

TEST_F(RuntimeTest, ExitCodeAndCwdAndEnv) {
  oci::RuntimeSpec s = Spec({"sh", "-c", "pwd; echo $FOO; exit 7"});
  s.process.cwd = "/tmp";
  s.process.env.push_back("FOO=bar");
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(code, 7);
  EXPECT_EQ(out, "/tmp\nbar\n");
}

TEST_F(RuntimeTest, MissingExecutableIsNotFound) {
  RunOptions o;
  auto st = runtime::Run(Spec({"no-such-binary"}), o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kNotFound);
  EXPECT_NE(st.error().message().find("exec \"no-such-binary\": executable file not found in $PATH"),
            std::string::npos)
      << st.error().message();
  // Nothing left behind.
  EXPECT_FALSE(PathExists("/sys/fs/cgroup/pids/" + cgroups_path_));
  EXPECT_FALSE(PathExists("/sys/fs/cgroup/memory/" + cgroups_path_));
}

TEST_F(RuntimeTest, NotExecutableIsPermission) {
  ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/bin/data", "x", 0644));
  auto st = runtime::Run(Spec({"/bin/data"}), RunOptions{});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kPermission) << st.error().message();
}

TEST_F(RuntimeTest, RlimitAboveHardLimitFailsClearly) {
  oci::RuntimeSpec s = Spec({"true"});
  s.process.rlimits = {{"RLIMIT_NOFILE", 1ull << 40, 1024}};
  auto st = runtime::Run(s, RunOptions{});
  if (st) {
    (void)Wait(st->pid);
    GTEST_SKIP() << "this process may raise hard limits (CAP_SYS_RESOURCE)";
  }
  EXPECT_NE(st.error().message().find("RLIMIT_NOFILE"), std::string::npos)
      << st.error().message();
  s.process.rlimits = {{"RLIMIT_NOFILE", 512, 256}};
  s.process.args = {"sh", "-c", "ulimit -n; ulimit -Hn"};
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(out, "256\n512\n");
}

TEST_F(RuntimeTest, MemoryLimitOomKills) {
  oci::RuntimeSpec s = Spec({"sh", "-c", "x=a; while true; do x=$x$x; done"});
  s.linux.resources.memory_limit = 32 << 20;
  s.linux.resources.memory_swap = 32 << 20;
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(code, 128 + SIGKILL) << out;
  auto oom = OomKilled(cgroups_path_);
  ASSERT_TRUE(oom) << oom.error().message();
  EXPECT_TRUE(*oom);
}

TEST_F(RuntimeTest, PidsLimitStopsForks) {
  oci::RuntimeSpec s = Spec({"sh", "-c",
                             "i=0; while [ $i -lt 30 ]; do sleep 100 & i=$((i+1)); done; "
                             "echo all-started"});
  s.linux.resources.pids_limit = 8;
  auto [code, out] = RunCapture(s);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("can't fork"), std::string::npos) << out;
  EXPECT_EQ(out.find("all-started"), std::string::npos) << out;
  auto events = ReadFile("/sys/fs/cgroup/pids/" + cgroups_path_ + "/pids.events");
  if (events) {
    EXPECT_NE(*events, "max 0\n");
  }
  // The init died, so its pid namespace is gone: RemoveCgroup leaves no directory anywhere.
  ASSERT_TRUE(RemoveCgroup(cgroups_path_));
  EXPECT_FALSE(PathExists("/sys/fs/cgroup/pids/" + cgroups_path_));
  EXPECT_FALSE(PathExists("/sys/fs/cgroup/memory/" + cgroups_path_));
  EXPECT_FALSE(PathExists("/sys/fs/cgroup/unified/" + cgroups_path_));
}

TEST_F(RuntimeTest, ExecJoinsTheContainer) {
  oci::RuntimeSpec s = Spec({"sleep", "100"});
  auto init = runtime::Run(s, RunOptions{});
  ASSERT_TRUE(init) << init.error().message();
  children_.push_back(init->pid);

  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  oci::Process proc;
  proc.args = {"sh", "-c", "hostname; cat /proc/1/cmdline; echo; echo pid=$$; pwd"};
  proc.env = {"PATH=/bin"};
  proc.cwd = "/tmp";
  ExecOptions eo;
  eo.stdio.out = w.get();
  eo.stdio.err = w.get();
  auto ex = Exec(init->pid, s, proc, eo);
  ASSERT_TRUE(ex) << ex.error().message();
  w.reset();
  std::string out = *ReadAll(r.get(), "pipe");
  auto code = Wait(ex->pid);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << out;
  std::vector<std::string> lines = Split(out, '\n');
  ASSERT_GE(lines.size(), 4u) << out;
  EXPECT_EQ(lines[0], "shaletest");
  EXPECT_EQ(lines[1], std::string("sleep\0" "100\0", 10));
  EXPECT_NE(lines[2], "pid=1");
  EXPECT_EQ(lines[3], "/tmp");
  auto pids = CgroupPids(cgroups_path_);
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{init->pid});

  proc.args = {"nope"};
  auto bad = Exec(init->pid, s, proc, ExecOptions{});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kNotFound);
}

// Reads the master until the slave side is gone (EIO) or `until` shows up.
std::string ReadPty(int master, const std::string& until = {}) {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = read(master, buf, sizeof(buf));
    if (n <= 0) break;  // EIO once the slave side is closed
    out.append(buf, n);
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

// Like runc: the pty comes from the container's own devpts, so `tty` says /dev/pts/0 and
// /dev/console is that same terminal; a write on the master reaches the process's stdin.
TEST_F(RuntimeTest, TerminalGetsAPty) {
  oci::RuntimeSpec s = Spec({"sh", "-c",
                             "stty size; tty; ls /dev/pts | tr '\\n' ' '; echo;"
                             " stat -c 'console=%t:%T' /dev/console; stat -L -c 'pts0=%t:%T' "
                             "/dev/pts/0; test -t 0 && echo isatty; echo ready; read line; "
                             "echo got=$line"});
  s.process.terminal = true;
  s.process.console_height = 24;
  s.process.console_width = 80;
  auto st = runtime::Run(s, RunOptions{});
  ASSERT_TRUE(st) << st.error().message();
  children_.push_back(st->pid);
  ASSERT_TRUE(st->pty_master);
  EXPECT_TRUE(fcntl(st->pty_master.get(), F_GETFD) & FD_CLOEXEC);
  std::string out = ReadPty(st->pty_master.get(), "ready");
  ASSERT_EQ(write(st->pty_master.get(), "hello\n", 6), 6);
  out += ReadPty(st->pty_master.get());
  EXPECT_EQ(*Wait(st->pid), 0) << out;
  children_.clear();
  EXPECT_NE(out.find("24 80\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("/dev/pts/0\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("isatty\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("got=hello\r\n"), std::string::npos) << out;
  // Only the container's terminal in its devpts (ptmx and 0), and /dev/console is it.
  EXPECT_NE(out.find("0 ptmx \r\n"), std::string::npos) << out;
  size_t c = out.find("console="), p = out.find("pts0=");
  ASSERT_NE(c, std::string::npos) << out;
  ASSERT_NE(p, std::string::npos) << out;
  EXPECT_EQ(out.substr(c + 8, out.find('\r', c) - c - 8),
            out.substr(p + 5, out.find('\r', p) - p - 5))
      << out;
}

// A terminal without a size keeps the kernel's 0x0; an exec'd process with a terminal gets
// its own pty from the container's devpts too.
TEST_F(RuntimeTest, ExecWithTerminal) {
  oci::RuntimeSpec s = Spec({"sh", "-c", "tty; sleep 100"});
  s.process.terminal = true;
  auto init = runtime::Run(s, RunOptions{});
  ASSERT_TRUE(init) << init.error().message();
  children_.push_back(init->pid);
  std::string init_out = ReadPty(init->pty_master.get(), "/dev/pts/0");
  EXPECT_NE(init_out.find("/dev/pts/0"), std::string::npos) << init_out;

  oci::Process proc;
  proc.args = {"sh", "-c", "stty size; tty; id -u; read x; echo x=$x"};
  proc.env = {"PATH=/bin"};
  proc.terminal = true;
  proc.console_height = 33;
  proc.console_width = 101;
  proc.user.uid = 1000;
  proc.user.gid = 1000;
  auto ex = Exec(init->pid, s, proc, ExecOptions{});
  ASSERT_TRUE(ex) << ex.error().message();
  ASSERT_TRUE(ex->pty_master);
  std::string out = ReadPty(ex->pty_master.get(), "1000\r\n");
  ASSERT_EQ(write(ex->pty_master.get(), "abc\n", 4), 4);
  out += ReadPty(ex->pty_master.get());
  EXPECT_EQ(*Wait(ex->pid), 0) << out;
  EXPECT_NE(out.find("33 101\r\n/dev/pts/1\r\n1000\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x=abc\r\n"), std::string::npos) << out;

  // No devpts in the container: a clear error, and nothing left running.
  oci::RuntimeSpec bare = Spec({"true"});
  bare.process.terminal = true;
  bare.mounts.erase(bare.mounts.begin() + 2);  // /dev/pts
  ASSERT_EQ(bare.mounts[1].destination, "/dev");
  auto st = runtime::Run(bare, RunOptions{});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("/dev/ptmx"), std::string::npos) << st.error().message();
}

TEST_F(RuntimeTest, ReadonlyRootAndNoPivot) {
  oci::RuntimeSpec s = Spec({"sh", "-c", "touch /x 2>/dev/null && echo writable || echo ro; "
                                         "echo y > /tmp/y && echo tmp-ok"});
  s.root.readonly = true;
  s.mounts.push_back({"/tmp", "tmpfs", "tmpfs", {"nosuid"}});
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(out, "ro\ntmp-ok\n");
  RunOptions o;
  o.no_pivot = true;
  oci::RuntimeSpec s2 = Spec({"sh", "-c", "test -d /proc/1"});
  auto st = runtime::Run(s2, o);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(*Wait(st->pid), 0);
}

TEST_F(RuntimeTest, BindMountFromHost) {
  ScopedTempDir data = *ScopedTempDir::Make("/tmp", "shale-rt-data-");
  ASSERT_TRUE(WriteFileAtomic(data.path() + "/hello", "from host\n"));
  oci::RuntimeSpec s = Spec({"sh", "-c", "cat /data/hello; touch /data/new 2>/dev/null || echo ro"});
  s.mounts.push_back({"/data", "bind", data.path(), {"rbind", "ro"}});
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(out, "from host\nro\n");
}

// Docker's device rules: mknod of any node works, but only the default devices open.
TEST_F(RuntimeTest, DeviceRulesAllowOnlyDefaultDevices) {
  const char* script =
      "rm -f /tmp/sda; mknod /tmp/sda b 8 0 && echo mknod-ok; head -c1 /tmp/sda; "
      "echo x > /dev/null && echo null-ok; head -c1 /dev/urandom > /dev/null && echo urandom-ok";
  oci::RuntimeSpec s = Spec({"sh", "-c", script});
  s.linux.resources.devices = oci::DefaultDeviceRules();
  auto [code, out] = RunCapture(s);
  EXPECT_NE(out.find("mknod-ok\n"), std::string::npos) << out;
  EXPECT_NE(out.find("/tmp/sda: Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(out.find("null-ok\n"), std::string::npos) << out;
  EXPECT_NE(out.find("urandom-ok\n"), std::string::npos) << out;
  auto list = ReadFile("/sys/fs/cgroup/devices/" + cgroups_path_ + "/devices.list");
  if (list) {
    EXPECT_NE(list->find("c 1:3 rwm"), std::string::npos) << *list;
    EXPECT_EQ(list->find("a *:* rwm"), std::string::npos) << *list;
  }
  ASSERT_TRUE(RemoveCgroup(cgroups_path_));

  // --privileged: every device may be opened (there is no 8:0 here, hence ENXIO, not EPERM).
  s.linux.resources.devices = oci::PrivilegedDeviceRules();
  auto [pcode, pout] = RunCapture(s);
  EXPECT_NE(pout.find("mknod-ok\n"), std::string::npos) << pout;
  EXPECT_EQ(pout.find("Operation not permitted"), std::string::npos) << pout;
  EXPECT_NE(pout.find("null-ok\n"), std::string::npos) << pout;
}

// Grants CAP_SYS_ADMIN, so only seccomp stands between the container and mount/unshare.
oci::Capabilities WithSysAdmin(oci::Capabilities c) {
  for (auto* set : {&c.bounding, &c.effective, &c.permitted}) set->push_back("CAP_SYS_ADMIN");
  return c;
}

TEST_F(RuntimeTest, DefaultSeccompRefusesMountAndUnshare) {
  const char* script =
      "unshare -n true; echo unshare=$?; mount -t tmpfs x /mnt; echo mount=$?; "
      "grep Seccomp: /proc/self/status; (echo forked) | cat";
  oci::RuntimeSpec s = Spec({"sh", "-c", script});
  s.process.capabilities = WithSysAdmin(s.process.capabilities);
  auto [code0, open_out] = RunCapture(s);
  EXPECT_NE(open_out.find("unshare=0\nmount=0\n"), std::string::npos) << open_out;
  EXPECT_NE(open_out.find("Seccomp:\t0"), std::string::npos) << open_out;

  s.linux.seccomp = oci::DefaultSeccomp(oci::DefaultCapabilities());
  auto [code, out] = RunCapture(s);
  EXPECT_NE(out.find("unshare: unshare(0x40000000): Operation not permitted"), std::string::npos)
      << out;
  EXPECT_NE(out.find("unshare=1\n"), std::string::npos) << out;
  // busybox's words for EPERM from mount(2).
  EXPECT_NE(out.find("mount: permission denied (are you root?)\nmount=1"), std::string::npos)
      << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
  EXPECT_NE(out.find("forked\n"), std::string::npos) << out;  // plain fork (clone) still works
}

// With CAP_SYS_ADMIN the default profile lets mount and unshare through, as Docker's
// includes.caps rules do; without it (above) they fail with EPERM.
TEST_F(RuntimeTest, DefaultSeccompWithSysAdminAllowsMountAndUnshare) {
  const char* script =
      "unshare -n true; echo unshare=$?; mount -t tmpfs x /mnt; echo mount=$?; "
      "umount /mnt; echo umount=$?; grep Seccomp: /proc/self/status";
  oci::RuntimeSpec s = Spec({"sh", "-c", script});
  s.process.capabilities = WithSysAdmin(s.process.capabilities);
  s.linux.seccomp = oci::DefaultSeccomp(s.process.capabilities.effective);
  auto [code, out] = RunCapture(s);
  EXPECT_NE(out.find("unshare=0\nmount=0\numount=0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
}

// A new network namespace gets `lo` up (docker's habit), so 127.0.0.1 answers.
TEST_F(RuntimeTest, LoopbackIsUpInANewNetworkNamespace) {
  oci::RuntimeSpec s =
      Spec({"sh", "-c", "cat /sys/class/net/lo/flags; ping -c1 -W2 127.0.0.1 >/dev/null; "
                        "echo ping=$?"});
  auto [code, out] = RunCapture(s);
  std::vector<std::string> lines = Split(out, '\n');
  ASSERT_GE(lines.size(), 2u) << out;
  unsigned long flags = std::strtoul(lines[0].c_str(), nullptr, 16);
  EXPECT_TRUE(flags & 0x1) << "lo flags " << lines[0];  // IFF_UP
  EXPECT_NE(out.find("ping=0\n"), std::string::npos) << out;
}

// Signals the caller ignores or blocks are not inherited by the container's process.
TEST_F(RuntimeTest, SignalDispositionsAreReset) {
  struct sigaction ign = {}, old_pipe = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &old_pipe), 0);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &usr1, &old_mask), 0);
  auto [code, out] = RunCapture(Spec({"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}));
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  EXPECT_NE(out.find("SigBlk:\t0000000000000000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("SigIgn:\t0000000000000000\n"), std::string::npos) << out;
}

TEST_F(RuntimeTest, SeccompAllowlistBehavesAsWritten) {
  oci::Seccomp sc;
  sc.default_action = "SCMP_ACT_ERRNO";  // EPERM
  sc.syscalls.push_back(
      {{"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
        "prlimit64", "mprotect", "getrandom", "getuid", "geteuid", "getpid", "getppid", "uname",
        "rt_sigaction", "rt_sigreturn", "rt_sigprocmask", "readlink", "newfstatat", "fstat",
        "openat", "read", "write", "writev", "close", "fcntl", "dup2", "ioctl", "clone",
        "wait4", "exit", "exit_group", "getcwd", "lseek", "no_such_syscall_in_any_kernel"},
       "SCMP_ACT_ALLOW", std::nullopt, {}});
  sc.syscalls.push_back({{"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", ENOSPC, {}});
  oci::RuntimeSpec s =
      Spec({"sh", "-c", "echo hello; mkdir /tmp/d; ln -s x /tmp/l; echo done"});
  s.process.no_new_privileges = true;  // the filter goes in just before execve
  s.linux.seccomp = sc;
  auto [code, out] = RunCapture(s);
  EXPECT_NE(out.find("hello\n"), std::string::npos) << out;
  EXPECT_NE(out.find("mkdir: can't create directory '/tmp/d': No space left on device"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ln: /tmp/l: Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(out.find("done\n"), std::string::npos) << out;

  // Nonsense is refused before anything starts, naming the field.
  sc.default_action = "SCMP_ACT_MAYBE";
  s.linux.seccomp = sc;
  auto st = runtime::Run(s, RunOptions{});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("SCMP_ACT_MAYBE"), std::string::npos)
      << st.error().message();
}

TEST_F(RuntimeTest, NoNewPrivileges) {
  oci::RuntimeSpec s = Spec({"grep", "NoNewPrivs:", "/proc/self/status"});
  auto [code0, out0] = RunCapture(s);
  EXPECT_EQ(out0, "NoNewPrivs:\t0\n");
  s.process.no_new_privileges = true;
  s.linux.seccomp = oci::DefaultSeccomp(oci::DefaultCapabilities());
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(out, "NoNewPrivs:\t1\n");
}

// Exec'd processes get the container's seccomp filter and no_new_privs, and no fd of ours.
TEST_F(RuntimeTest, ExecGetsFilterAndNoHostFds) {
  oci::RuntimeSpec s = Spec({"sleep", "100"});
  s.process.capabilities = WithSysAdmin(s.process.capabilities);
  s.process.no_new_privileges = true;
  s.linux.seccomp = oci::DefaultSeccomp(oci::DefaultCapabilities());
  s.linux.resources.devices = oci::DefaultDeviceRules();
  auto init = runtime::Run(s, RunOptions{});
  ASSERT_TRUE(init) << init.error().message();
  children_.push_back(init->pid);

  // A host fd without CLOEXEC, as a careless caller might hold.
  UniqueFd leaky(::open("/etc/hostname", O_RDONLY));
  ASSERT_TRUE(leaky);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  oci::Process proc;
  proc.args = {"sh", "-c",
               "ls /proc/self/fd | tr '\\n' ' '; echo; grep -E 'NoNewPrivs|Seccomp:' "
               "/proc/self/status; unshare -n true; echo unshare=$?; head -c1 /tmp/sda"};
  proc.env = {"PATH=/bin"};
  ExecOptions eo;
  eo.stdio.out = w.get();
  eo.stdio.err = w.get();
  ASSERT_EQ(mknod((rootfs_ + "/tmp/sda").c_str(), S_IFBLK | 0600, makedev(8, 0)), 0);
  auto ex = Exec(init->pid, s, proc, eo);
  ASSERT_TRUE(ex) << ex.error().message();
  w.reset();
  std::string out = *ReadAll(r.get(), "pipe");
  ASSERT_TRUE(Wait(ex->pid));
  // 0-2 and ls's own directory fd; the leaky fd's number is not there.
  EXPECT_NE(out.find("0 1 2 3 \n"), std::string::npos) << out << " leaky fd " << leaky.get();
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
  EXPECT_NE(out.find("unshare=1"), std::string::npos) << out;
  EXPECT_NE(out.find("/tmp/sda: Operation not permitted"), std::string::npos) << out;
}

// Not a test: `--gtest_also_run_disabled_tests --gtest_filter=*Bench*` times 200 runs, bare
// and with Docker's defaults (seccomp filter and device rules).
void Bench200(const oci::RuntimeSpec& s, const std::string& cgroups_path, const char* what) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    auto st = runtime::Run(s, RunOptions{});
    ASSERT_TRUE(st) << st.error().message();
    ASSERT_EQ(*Wait(st->pid), 0);
    ASSERT_TRUE(RemoveCgroup(cgroups_path));
  }
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  printf("200 runs (%s): %.1f ms total, %.2f ms per run\n", what, ms.count(), ms.count() / 200);
}

// The lifecycle with a state directory, as shale-runc drives it: created (blocked before
// execve on the fifo) -> running -> stopped -> deleted, and the errors of a wrong state.
TEST_F(RuntimeTest, LifecycleThroughTheStateDir) {
  std::string dir = tmp_.path() + "/state-c1";
  RunOptions o;
  o.container_id = "c1";
  o.bundle = tmp_.path();
  o.state_dir = dir;
  o.die_with_parent = false;
  oci::RuntimeSpec spec = Spec({"sleep", "100"});
  spec.annotations = {{"org.example", "v"}};
  auto created = Create(spec, o);
  ASSERT_TRUE(created) << created.error().message();
  pid_t pid = created->pid();
  children_.push_back(pid);
  created->Detach();
  auto st = LoadState(dir);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->pid, pid);
  EXPECT_EQ(CurrentStatus(dir, *st), Status::kCreated);
  nlohmann::json j = OciState(*st, Status::kCreated);
  EXPECT_EQ(j["status"], "created");
  EXPECT_EQ(j["bundle"], tmp_.path());
  EXPECT_EQ(j["annotations"]["org.example"], "v");
  // Blocked before execve: still this binary, not sleep.
  EXPECT_NE(*ReadFile("/proc/" + std::to_string(pid) + "/comm"), "sleep\n");
  auto again = Create(spec, o);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kAlreadyExists);

  ASSERT_TRUE(Start(dir));
  EXPECT_EQ(CurrentStatus(dir, *st), Status::kRunning);
  for (int i = 0; i < 100 && *ReadFile("/proc/" + std::to_string(pid) + "/comm") != "sleep\n"; ++i)
    usleep(10000);
  EXPECT_EQ(*ReadFile("/proc/" + std::to_string(pid) + "/comm"), "sleep\n");
  auto start2 = Start(dir);
  ASSERT_FALSE(start2);
  EXPECT_EQ(start2.error().code(), Errc::kBusy);
  EXPECT_NE(start2.error().message().find("running"), std::string::npos);
  auto del = Delete(dir, /*force=*/false);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().code(), Errc::kBusy);
  ASSERT_TRUE(Pause(dir, true));
  EXPECT_EQ(CurrentStatus(dir, *LoadState(dir)), Status::kPaused);
  ASSERT_TRUE(Pause(dir, false));

  ASSERT_TRUE(Kill(dir, SIGKILL, /*all=*/false));
  ASSERT_TRUE(Wait(pid));  // we are its parent: reap it, as a shim would
  children_.clear();
  EXPECT_EQ(CurrentStatus(dir, *st), Status::kStopped);
  auto kill2 = Kill(dir, SIGTERM, false);
  ASSERT_FALSE(kill2);
  EXPECT_EQ(kill2.error().code(), Errc::kBusy);
  auto d = Delete(dir, false);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_FALSE(PathExists(dir));
  auto gone = LoadState(dir);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::kNotFound);
  auto cg = cgroup::NewCgroupManager(cgroups_path_);
  for (const std::string& cdir : (*cg)->Dirs()) EXPECT_FALSE(PathExists(cdir)) << cdir;
}

// A created container that is never started leaves nothing once its handle goes.
TEST_F(RuntimeTest, CreatedButNotStartedLeavesNothing) {
  std::string dir = tmp_.path() + "/state-c2";
  RunOptions o;
  o.container_id = "c2";
  o.state_dir = dir;
  pid_t pid;
  {
    auto created = Create(Spec({"sleep", "100"}), o);
    ASSERT_TRUE(created) << created.error().message();
    pid = created->pid();
    EXPECT_TRUE(PathExists(dir + "/exec.fifo"));
  }
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_FALSE(PathExists(dir));
  auto cg = cgroup::NewCgroupManager(cgroups_path_);
  for (const std::string& cdir : (*cg)->Dirs()) EXPECT_FALSE(PathExists(cdir)) << cdir;
}

// In-process (shale run): released over the channel; startContainer runs inside the
// container before the process, createContainer before pivot_root.
TEST_F(RuntimeTest, HooksInsideTheContainer) {
  oci::RuntimeSpec s = Spec({"cat", "/tmp/start-hook"});
  s.hooks.start_container = {{"/bin/sh", {"sh", "-c", "echo started > /tmp/start-hook"}, {}, {}}};
  s.hooks.create_runtime = {{"/bin/sh", {"sh", "-c", "cat > " + tmp_.path() + "/state.json"}, {}, {}}};
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "started\n");
  auto state = nlohmann::json::parse(*ReadFile(tmp_.path() + "/state.json"));
  EXPECT_EQ(state["status"], "created");
  EXPECT_GT(state["pid"].get<int>(), 0);
}

TEST_F(RuntimeTest, UserNamespaceWithMappings) {
  // The mapped root must reach the rootfs: the temp dir is 0700.
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  oci::RuntimeSpec s = Spec({"sh", "-c", "cat /proc/self/uid_map; id -u"});
  s.linux.namespaces.push_back({"user", ""});
  s.linux.uid_mappings = {{0, 200000, 65536}};
  s.linux.gid_mappings = {{0, 200000, 65536}};
  auto [code, out] = RunCapture(s);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("200000"), std::string::npos) << out;
  EXPECT_NE(out.find("\n0\n"), std::string::npos) << out;
}

// The init is born in its cgroup2 directory and joins the v1 hierarchies itself (no parent
// moving it); an exec'd process too; in a new user namespace the parent moves it. Whichever
// way, each must be in the container's cgroup in every hierarchy.
TEST_F(RuntimeTest, InitAndExecAreInTheCgroupOfEveryHierarchy) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  for (bool user_ns : {false, true}) {
    SCOPED_TRACE(user_ns ? "new user namespace" : "no user namespace");
    oci::RuntimeSpec s = Spec({"sleep", "100"});
    if (user_ns) {
      s.linux.namespaces.push_back({"user", ""});
      s.linux.uid_mappings = {{0, 200000, 65536}};
      s.linux.gid_mappings = {{0, 200000, 65536}};
    }
    auto init = runtime::Run(s, RunOptions{});
    ASSERT_TRUE(init) << init.error().message();
    children_.push_back(init->pid);
    oci::Process proc;
    proc.args = {"sleep", "100"};
    proc.env = {"PATH=/bin"};
    auto ex = Exec(init->pid, s, proc, ExecOptions{});
    ASSERT_TRUE(ex) << ex.error().message();
    children_.insert(children_.begin(), ex->pid);  // reaped before the init (see below)
    auto cg = cgroup::NewCgroupManager(cgroups_path_);
    ASSERT_TRUE(cg);
    std::vector<pid_t> want = {init->pid, ex->pid};
    std::sort(want.begin(), want.end());
    for (const std::string& d : (*cg)->Dirs()) {
      auto procs = cgroup::ReadProcs(d);
      ASSERT_TRUE(procs) << d;
      std::sort(procs->begin(), procs->end());
      EXPECT_EQ(*procs, want) << d;
    }
    // The exec'd one first: the init's exit waits until its pid namespace is reaped.
    for (pid_t p : {ex->pid, init->pid}) {
      kill(p, SIGKILL);
      (void)Wait(p);
    }
    children_.clear();
    ASSERT_TRUE(RemoveCgroup(cgroups_path_));
  }
}

// PlanInit: spec -> InitConfig, pure.
TEST(PlanInitTest, Table) {
  struct Case {
    const char* name;
    std::function<void(oci::RuntimeSpec&)> edit;
    std::optional<Errc> error;
  };
  std::vector<Case> cases = {
      {"minimal", [](oci::RuntimeSpec&) {}, std::nullopt},
      {"relative root", [](oci::RuntimeSpec& s) { s.root.path = "rootfs"; }, Errc::kInvalidArgument},
      {"no args", [](oci::RuntimeSpec& s) { s.process.args.clear(); }, Errc::kInvalidArgument},
      {"user ns without maps", [](oci::RuntimeSpec& s) { s.linux.namespaces.push_back({"user", ""}); },
       Errc::kInvalidArgument},
      {"maps without user ns", [](oci::RuntimeSpec& s) { s.linux.uid_mappings = {{0, 1000, 1}}; },
       Errc::kInvalidArgument},
      {"shared rootfs propagation", [](oci::RuntimeSpec& s) { s.linux.rootfs_propagation = "rshared"; },
       std::nullopt},
      {"unbindable rootfs propagation",
       [](oci::RuntimeSpec& s) { s.linux.rootfs_propagation = "unbindable"; }, std::nullopt},
      {"bad rootfs propagation", [](oci::RuntimeSpec& s) { s.linux.rootfs_propagation = "bogus"; },
       Errc::kInvalidArgument},
      {"propagation without a mount namespace",
       [](oci::RuntimeSpec& s) {
         s.linux.namespaces.clear();
         s.linux.rootfs_propagation = "rslave";
       },
       Errc::kInvalidArgument},
      {"bad sysctl key", [](oci::RuntimeSpec& s) { s.linux.sysctl["../x"] = "1"; },
       Errc::kInvalidArgument},
      {"unknown rlimit", [](oci::RuntimeSpec& s) { s.process.rlimits = {{"RLIMIT_BOGUS", 1, 1}}; },
       Errc::kInvalidArgument},
      {"unknown capability", [](oci::RuntimeSpec& s) { s.process.capabilities.bounding = {"CAP_BOGUS"}; },
       Errc::kInvalidArgument},
  };
  for (const Case& c : cases) {
    oci::RuntimeSpec s;
    s.process.args = {"true"};
    s.root.path = "/";
    s.linux.namespaces = {{"mount", ""}};
    c.edit(s);
    auto r = PlanInit(s, RunOptions{}, false);
    if (c.error) {
      ASSERT_FALSE(r) << c.name;
      EXPECT_EQ(r.error().code(), *c.error) << c.name << ": " << r.error().message();
    } else {
      EXPECT_TRUE(r) << c.name << ": " << r.error().message();
    }
  }
  oci::RuntimeSpec s;
  s.process.args = {"true"};
  s.process.user.umask = 077;
  s.process.oom_score_adj = 500;
  s.root.path = "/";
  s.linux.sysctl = {{"net.ipv4.ip_forward", "1"}};
  s.linux.rootfs_propagation = "rslave";
  s.linux.namespaces = {{"mount", ""}};
  s.hooks.prestart = {{"/bin/true", {}, {}, {}}};
  RunOptions o;
  o.preserve_fds = 2;
  auto c = PlanInit(s, o, false);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->sysctl[0].first, "net/ipv4/ip_forward");
  EXPECT_EQ(c->root_propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_FALSE(c->host_mount_ns);
  s.linux.namespaces.clear();
  s.linux.rootfs_propagation.clear();
  auto host = PlanInit(s, o, false);
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_TRUE(host->host_mount_ns);
  EXPECT_EQ(c->process.umask, 077u);
  EXPECT_EQ(*c->process.oom_score_adj, 500);
  EXPECT_EQ(c->process.preserve_fds, 2);
  EXPECT_TRUE(c->sync_hooks);
}

TEST_F(RuntimeTest, DISABLED_Bench200) { Bench200(Spec({"true"}), cgroups_path_, "bare"); }

TEST_F(RuntimeTest, DISABLED_Bench200Hardened) {
  oci::RuntimeSpec s = Spec({"true"});
  s.linux.seccomp = oci::DefaultSeccomp(oci::DefaultCapabilities());
  s.linux.resources.devices = oci::DefaultDeviceRules();
  Bench200(s, cgroups_path_, "seccomp + devices");
}

}  // namespace
}  // namespace shale::runtime
