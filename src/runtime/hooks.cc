#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/fd.h"

namespace shale::runtime {
namespace {

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

Result<void> RunHook(const oci::Hook& hook, std::string_view state_json, std::string_view phase) {
  std::string what = std::string(phase) + " hook " + hook.path;
  if (hook.path.empty() || hook.path[0] != '/')
    return Error(Errc::kInvalidArgument, what + ": the path must be absolute");
  if (hook.timeout && *hook.timeout <= 0)
    return Error(Errc::kInvalidArgument, what + ": timeout must be greater than zero");
  // Everything the child needs is built before fork: it only dup2s and execs.
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = hook.env;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int in[2], report[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Error::FromErrno(errno, what + ": pipe");
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(report, O_CLOEXEC) != 0) return Error::FromErrno(errno, what + ": pipe");
  UniqueFd rep_r(report[0]), rep_w(report[1]);
  pid_t pid = fork();
  if (pid < 0) return Error::FromErrno(errno, what + ": fork");
  if (pid == 0) {
    if (dup2(in[0], 0) < 0) _exit(127);
    execve(hook.path.c_str(), argv.data(), envp.data());
    int err = errno;
    (void)!write(report[1], &err, sizeof(err));  // the CLOEXEC pipe tells the parent why
    _exit(127);
  }
  in_r.reset();
  rep_w.reset();
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  // A hook that does not read its stdin must not block us: the pipe holds 64 KiB and the
  // write end closes right after.
  (void)fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  (void)!write(in_w.get(), state_json.data(), state_json.size());
  in_w.reset();
  int exec_err = 0;
  if (read(rep_r.get(), &exec_err, sizeof(exec_err)) != sizeof(exec_err)) exec_err = 0;

  bool timed_out = false;
  if (hook.timeout && pidfd) {
    int64_t deadline = NowMs() + int64_t{*hook.timeout} * 1000;
    for (;;) {
      int64_t left = deadline - NowMs();
      if (left <= 0) {
        timed_out = true;
        kill(pid, SIGKILL);
        break;
      }
      struct pollfd p = {pidfd.get(), POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r > 0) break;
      if (r < 0 && errno != EINTR) break;
    }
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return Error::FromErrno(errno, what + ": waitpid");
  }
  if (exec_err) return Error::FromErrno(exec_err, what + ": exec");
  if (timed_out)
    return Error(Errc::kCancelled,
                 what + ": killed after its timeout of " + std::to_string(*hook.timeout) + " s");
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Ok();
  if (WIFSIGNALED(st))
    return Error(Errc::kInternal, what + ": killed by signal " + std::to_string(WTERMSIG(st)));
  return Error(Errc::kInternal, what + ": exited with status " + std::to_string(WEXITSTATUS(st)));
}

Result<void> RunHooks(const std::vector<oci::Hook>& hooks, std::string_view state_json,
                      std::string_view phase) {
  for (const oci::Hook& h : hooks) TRY(RunHook(h, state_json, phase));
  return Ok();
}

}  // namespace shale::runtime
