#include "runtime/channel.h"
#include "runtime/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "util/fs.h"

namespace shale::runtime {
namespace {

TEST(SeccompTest, CompilesTheDefaultProfileOnce) {
  auto t0 = std::chrono::steady_clock::now();
  auto p = CompileSeccomp(oci::DefaultSeccomp(oci::DefaultCapabilities()));
  auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_GT(p->insns.size(), 50u);
  EXPECT_LT(p->insns.size(), 4096u);  // BPF_MAXINSNS
  printf("default profile: %zu instructions, compiled in %.0f us\n", p->insns.size(), us.count());
}

// The key changes with every field that reaches libseccomp, and only with them.
TEST(SeccompTest, CacheKeyFollowsTheSpec) {
  oci::Seccomp a = oci::DefaultSeccomp(oci::DefaultCapabilities());
  oci::Seccomp b = a;
  EXPECT_EQ(SeccompCacheKey(a), SeccompCacheKey(b));
  b.listener_metadata = "only for the listener";
  EXPECT_EQ(SeccompCacheKey(a), SeccompCacheKey(b));
  auto differs = [&](auto change) {
    oci::Seccomp c = a;
    change(c);
    return SeccompCacheKey(c) != SeccompCacheKey(a);
  };
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.default_action = "SCMP_ACT_KILL"; }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.default_errno_ret = 38; }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.architectures.pop_back(); }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.flags.push_back("SECCOMP_FILTER_FLAG_LOG"); }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.syscalls[0].names.pop_back(); }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.syscalls[0].action = "SCMP_ACT_LOG"; }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.syscalls.back().args.push_back({1, 2, 3, "SCMP_CMP_EQ"}); }));
  EXPECT_TRUE(differs([](oci::Seccomp& c) { c.listener_path = "/run/agent.sock"; }));
  // Names that run together must not collide: lengths are part of the key.
  oci::Seccomp x, y;
  x.syscalls.push_back({{"ab", "c"}, "SCMP_ACT_ERRNO", std::nullopt, {}});
  y.syscalls.push_back({{"a", "bc"}, "SCMP_ACT_ERRNO", std::nullopt, {}});
  EXPECT_NE(SeccompCacheKey(x), SeccompCacheKey(y));
}

TEST(SeccompTest, UnknownNamesSkippedBadValuesRefused) {
  oci::Seccomp s;
  s.syscalls.push_back({{"no_such_syscall", "mkdir"}, "SCMP_ACT_ERRNO", std::nullopt, {}});
  s.syscalls.push_back({{"getpid"}, "SCMP_ACT_ALLOW", std::nullopt, {}});  // == default
  EXPECT_TRUE(CompileSeccomp(s));

  oci::Seccomp bad = s;
  bad.syscalls[0].args = {{0, 1, 0, "SCMP_CMP_ABOUT"}};
  auto r = CompileSeccomp(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("SCMP_CMP_ABOUT"), std::string::npos);
  bad = s;
  bad.syscalls[0].args = {{6, 1, 0, "SCMP_CMP_EQ"}};
  EXPECT_FALSE(CompileSeccomp(bad));
  bad = s;
  bad.architectures = {"SCMP_ARCH_PDP11"};
  r = CompileSeccomp(bad);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("SCMP_ARCH_PDP11"), std::string::npos);
  bad = s;
  bad.syscalls[1].action = "SCMP_ACT_NOTIFY";
  r = CompileSeccomp(bad);
  ASSERT_FALSE(r);  // no listenerPath
  EXPECT_NE(r.error().message().find("listenerPath"), std::string::npos);

  // Two comparisons on one argument: one rule each (OR), not a libseccomp error.
  oci::Seccomp two;
  two.syscalls.push_back({{"socket"}, "SCMP_ACT_ERRNO", std::nullopt,
                          {{0, 38, 0, "SCMP_CMP_EQ"}, {0, 40, 0, "SCMP_CMP_EQ"}}});
  EXPECT_TRUE(CompileSeccomp(two));
}

TEST(SeccompTest, NotifyNeedsAListenerAndIsNeverTheDefault) {
  oci::Seccomp s;
  s.syscalls.push_back({{"mkdir", "mkdirat"}, "SCMP_ACT_NOTIFY", std::nullopt, {}});
  auto r = CompileSeccomp(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().message().find("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"),
            std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("linux.seccomp.syscalls[0]"), std::string::npos);

  s.listener_path = "/run/agent.sock";
  auto p = CompileSeccomp(s);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(p->listener);
  EXPECT_TRUE(p->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER);

  // Without NOTIFY rules a listenerPath is ignored (the spec), and so is WAIT_KILLABLE_RECV,
  // which the kernel takes only with a listener.
  oci::Seccomp plain;
  plain.listener_path = "/run/agent.sock";
  plain.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  plain.syscalls.push_back({{"mkdir"}, "SCMP_ACT_ERRNO", std::nullopt, {}});
  p = CompileSeccomp(plain);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(p->listener);
  EXPECT_EQ(p->flags, 0u);

  oci::Seccomp def = s;
  def.default_action = "SCMP_ACT_NOTIFY";
  r = CompileSeccomp(def);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("defaultAction"), std::string::npos);

  oci::Seccomp hand_over = s;
  hand_over.syscalls.push_back({{"sendmsg"}, "SCMP_ACT_NOTIFY", std::nullopt, {}});
  r = CompileSeccomp(hand_over);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("sendmsg"), std::string::npos);
}

TEST(SeccompTest, ContainerProcessState) {
  nlohmann::json state = {{"ociVersion", "1.1.0"}, {"id", "c1"}, {"status", "creating"},
                          {"pid", 42}, {"bundle", "/b"}};
  nlohmann::json j = ContainerProcessState(42, "MKNOD=/dev/null", state);
  EXPECT_EQ(j["ociVersion"], "1.1.0");
  EXPECT_EQ(j["fds"], nlohmann::json::array({"seccompFd"}));
  EXPECT_EQ(j["pid"], 42);
  EXPECT_EQ(j["metadata"], "MKNOD=/dev/null");
  EXPECT_EQ(j["state"], state);
  EXPECT_FALSE(ContainerProcessState(42, "", state).contains("metadata"));
}

TEST(SeccompTest, UnreachableListenerIsAnErrorNamingThePath) {
  auto dir = ScopedTempDir::Make("/tmp", "shale-seccomp-test-");
  ASSERT_TRUE(dir) << dir.error().message();
  std::string path = dir->path() + "/nobody.sock";
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto r = SendToSeccompListener(path, nlohmann::json::object(), fd.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
  r = SendToSeccompListener(dir->path() + "/" + std::string(120, 'x'), nlohmann::json::object(),
                            fd.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
}

// The whole hand-over for real: a child loads a filter that notifies mkdir, sends the notify
// fd with its process state to our socket (SendToSeccompListener), and calls mkdir; we
// receive the state and the fd and answer EROFS, so the child sees EROFS and no directory
// appears.
TEST(SeccompTest, NotifyFdReachesTheListenerWhichAnswersTheSyscall) {
  auto dir = ScopedTempDir::Make("/tmp", "shale-seccomp-test-");
  ASSERT_TRUE(dir) << dir.error().message();
  std::string sock_path = dir->path() + "/agent.sock";
  std::string target = dir->path() + "/made-by-child";
  oci::Seccomp s;
  s.listener_path = sock_path;
  s.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};  // taken with a listener (5.19)
  s.syscalls.push_back({{"mkdir", "mkdirat"}, "SCMP_ACT_NOTIFY", std::nullopt, {}});
  auto prog = CompileSeccomp(s);
  ASSERT_TRUE(prog) << prog.error().message();
  EXPECT_NE(prog->flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, 0u);

  UniqueFd listen_sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listen_sock);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, sock_path.data(), sock_path.size());
  ASSERT_EQ(::bind(listen_sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listen_sock.get(), 1), 0);

  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(2);
    auto notify = LoadSeccomp(*prog);
    if (!notify || !*notify) _exit(3);
    nlohmann::json st = ContainerProcessState(getpid(), "meta", {{"id", "t"}});
    if (!SendToSeccompListener(sock_path, st, notify->get())) _exit(4);
    notify->reset();
    if (mkdir(target.c_str(), 0755) == 0) _exit(5);
    _exit(errno == EROFS ? 0 : 6);
  }
  ASSERT_GT(pid, 0);
  struct Reap {
    pid_t pid;
    ~Reap() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reap{pid};

  UniqueFd conn(::accept4(listen_sock.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn) << strerror(errno);
  char buf[4096];
  auto got = ReceiveFdOn(conn.get(), buf, sizeof(buf), "the state");
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_GT(got->bytes, 0u);
  ASSERT_TRUE(got->fd) << "the state came without the notify fd";
  UniqueFd notify = std::move(got->fd);
  std::string data(buf, got->bytes);
  char more;
  EXPECT_EQ(::recv(conn.get(), &more, 1, 0), 0) << "one state per connection, then closed";
  nlohmann::json st = nlohmann::json::parse(data);
  EXPECT_EQ(st["pid"], pid);
  EXPECT_EQ(st["metadata"], "meta");
  EXPECT_EQ(st["fds"], nlohmann::json::array({"seccompFd"}));

  struct seccomp_notif req = {};
  ASSERT_EQ(ioctl(notify.get(), SECCOMP_IOCTL_NOTIF_RECV, &req), 0) << strerror(errno);
  EXPECT_EQ(static_cast<pid_t>(req.pid), pid);
  struct seccomp_notif_resp resp = {};
  resp.id = req.id;
  resp.error = -EROFS;
  ASSERT_EQ(ioctl(notify.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp), 0) << strerror(errno);

  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  reap.pid = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3 load, 4 send to the listener, 5 mkdir made, 6 errno";
  struct stat sb;
  EXPECT_NE(stat(target.c_str(), &sb), 0) << "the agent refused it: nothing was made";
}

// Loads the default profile in a child and checks what it refuses, argument rules included.
TEST(SeccompTest, DefaultProfileInAChild) {
  auto prog = CompileSeccomp(oci::DefaultSeccomp(oci::DefaultCapabilities()));
  ASSERT_TRUE(prog) << prog.error().message();
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(2);
    if (!LoadSeccomp(*prog)) _exit(3);
    if (unshare(CLONE_NEWNET) == 0 || errno != EPERM) _exit(10);
    if (syscall(SYS_clone3, nullptr, 0) == 0 || errno != ENOSYS) _exit(11);
    if (personality(0xffffffff) < 0) {
      // refused query: documented side effect; the flags below are what matters
    }
    if (personality(static_cast<unsigned long>(PER_LINUX) | ADDR_NO_RANDOMIZE) != -1 || errno != EPERM) _exit(12);
    if (personality(PER_LINUX) == -1) _exit(13);
    if (socket(38 /*AF_ALG*/, SOCK_SEQPACKET, 0) != -1 || errno != EPERM) _exit(14);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) _exit(15);
    close(fd);
    // clone with a namespace flag: EPERM; a plain fork works.
    if (syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0) != -1 || errno != EPERM) _exit(16);
    pid_t c = fork();
    if (c == 0) _exit(0);
    if (c < 0) _exit(17);
    int st;
    waitpid(c, &st, 0);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10 unshare, 11 clone3, 12 personality flag, 13 PER_LINUX, 14 AF_ALG, 15 AF_UNIX, "
         "16 clone(CLONE_NEWUTS), 17 fork";
}

}  // namespace
}  // namespace shale::runtime
