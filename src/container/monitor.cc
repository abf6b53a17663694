// The monitor: starts a container, copies its output to the caller and the json-file log,
// forwards signals and terminal size, records its exit. Also exec and logs, which share the
// I/O pump.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "container/container.h"
#include "container/files.h"
#include "container/trace.h"
#include "runtime/runtime.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::container {
namespace {

using nlohmann::json;

// Docker's json-file log: one JSON object per line of output.
class JsonLog {
 public:
  explicit JsonLog(UniqueFd fd) : fd_(std::move(fd)) {}
  ~JsonLog() { Flush(); }
  void Write(int stream, std::string_view data) {
    std::string& p = partial_[stream];
    p.append(data);
    size_t start = 0, nl;
    while ((nl = p.find('\n', start)) != std::string::npos) {
      Line(stream, std::string_view(p).substr(start, nl - start + 1));
      start = nl + 1;
    }
    p.erase(0, start);
    if (p.size() >= 16 * 1024) {  // docker splits long lines at 16K too
      Line(stream, p);
      p.clear();
    }
  }
  void Flush() {
    for (int s = 0; s < 2; ++s)
      if (!partial_[s].empty()) {
        Line(s, partial_[s]);
        partial_[s].clear();
      }
  }

 private:
  void Line(int stream, std::string_view line) {
    if (!fd_) return;
    json j = {{"log", std::string(line)},
              {"stream", stream == 0 ? "stdout" : "stderr"},
              {"time", FormatRfc3339Nano(NowUnixNanos())}};
    std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    s += '\n';
    (void)WriteAll(fd_.get(), s, "log");
  }
  UniqueFd fd_;
  std::string partial_[2];
};

// Raw mode on the caller's terminal for -t, restored in the destructor.
class RawTerminal {
 public:
  bool Enter(int fd) {
    if (!isatty(fd) || tcgetattr(fd, &saved_) != 0) return false;
    struct termios raw = saved_;
    cfmakeraw(&raw);  // the container's pty does its own output processing
    if (tcsetattr(fd, TCSANOW, &raw) != 0) return false;
    fd_ = fd;
    return true;
  }
  void Restore() {
    if (fd_ >= 0) tcsetattr(fd_, TCSANOW, &saved_);
    fd_ = -1;
  }
  ~RawTerminal() { Restore(); }

 private:
  int fd_ = -1;
  struct termios saved_ {};
};

void CopyWinsize(int from, int to) {
  struct winsize ws;
  if (ioctl(from, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) ioctl(to, TIOCSWINSZ, &ws);
}

struct Io {
  int out_r = -1, err_r = -1;  // pipes from the container
  int master = -1;             // pty master (-t)
  int in = -1;                 // our stdin, copied to the master (-it)
  bool echo = false;           // copy output to our stdout/stderr
  JsonLog* log = nullptr;
  // Attached run: EOF here means the client that started us is gone. Then output goes to
  // the log only, its stdin is no longer read and its terminal is restored.
  int client = -1;
  RawTerminal* raw = nullptr;
};

// Signals an attached client and its monitor forward to the container (docker's sig-proxy).
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

sigset_t ForwardedSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwarded) sigaddset(&set, s);
  return set;
}

// The client is gone: stop writing to its stdout/stderr (a closed pipe or a terminal that
// is no longer ours) and let go of them, so a reader of its pipe sees EOF now, not when the
// container exits.
void DetachFromClient(Io& io) {
  io.echo = false;
  io.in = -1;
  if (io.raw) io.raw->Restore();
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null)
    for (int fd : {0, 1, 2}) dup2(null.get(), fd);
}

// Pumps output until `pidfd` reports the process exited, then drains what is left; forwards
// SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to `pid` and SIGWINCH as the pty size.
void Pump(Io& io, int pidfd, pid_t pid) {
  sigset_t set = ForwardedSet(), old;
  sigprocmask(SIG_BLOCK, &set, &old);
  UniqueFd sfd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  char buf[65536];
  auto emit = [&](int fd, int stream) -> bool {  // false at EOF/error
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return n < 0 && errno == EAGAIN;
    // EPIPE (SIGPIPE is ignored) or any error on the client's side stops the echo, never the
    // container: the log still gets everything.
    if (io.echo && !WriteAll(stream == 0 ? 1 : 2, std::string_view(buf, n), "stdout"))
      io.echo = false;
    if (io.log) io.log->Write(stream, std::string_view(buf, n));
    return true;
  };
  int outs[3] = {io.out_r, io.err_r, io.master};
  int streams[3] = {0, 1, 0};
  bool exited = false;
  while (!exited) {
    struct pollfd p[7];
    int idx[7];
    int n = 0;
    p[n] = {pidfd, POLLIN, 0}, idx[n++] = -1;
    if (sfd) p[n] = {sfd.get(), POLLIN, 0}, idx[n++] = -2;
    if (io.in >= 0) p[n] = {io.in, POLLIN, 0}, idx[n++] = -3;
    if (io.client >= 0) p[n] = {io.client, POLLIN, 0}, idx[n++] = -4;
    for (int i = 0; i < 3; ++i)
      if (outs[i] >= 0) p[n] = {outs[i], POLLIN, 0}, idx[n++] = i;
    if (poll(p, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < n; ++k) {
      if (!p[k].revents) continue;
      if (idx[k] == -1) {
        exited = true;
      } else if (idx[k] == -2) {
        struct signalfd_siginfo si;
        while (read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
          if (si.ssi_signo == SIGWINCH) {
            if (io.master >= 0) CopyWinsize(0, io.master);
          } else {
            ::kill(pid, static_cast<int>(si.ssi_signo));
          }
        }
      } else if (idx[k] == -3) {
        if (io.in < 0) continue;  // the client left in this round
        ssize_t r = read(io.in, buf, sizeof(buf));
        if (r <= 0) {
          io.in = -1;
        } else {
          (void)WriteAll(io.master, std::string_view(buf, r), "pty");
        }
      } else if (idx[k] == -4) {
        io.client = -1;  // only EOF comes: the client holds the write end and never writes
        DetachFromClient(io);
      } else {
        int i = idx[k];
        if (!emit(outs[i], streams[i])) outs[i] = -1;
      }
    }
  }
  // The pid namespace is gone with its init, so the writers close soon: drain until EOF,
  // never waiting long for a writer that somehow lingers.
  for (int i = 0; i < 3; ++i) {
    if (outs[i] < 0) continue;
    for (;;) {
      struct pollfd p = {outs[i], POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) break;
      if (!emit(outs[i], streams[i])) break;
    }
  }
  if (io.log) io.log->Flush();
  sigprocmask(SIG_SETMASK, &old, nullptr);
}

UniqueFd OpenDevNull() { return UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)); }

void Report(int fd, std::string_view msg) {
  if (fd < 0) return;
  (void)WriteAll(fd, msg, "report pipe");
}

}  // namespace

void Manager::Finish(const Record& r, int status, bool oom) {
  (void)AwaitNetwork();  // a start that failed before the network setup was waited for
  std::string dir = ContainerDir(r.id);
  {
    auto lock = FileLock::Acquire(dir + "/lock", FileLock::Mode::kExclusive);
    State s = ReadState(r.id).value_or(State{});
    s.status = "exited";
    s.exit_code = status;
    s.oom_killed = oom;
    s.finished_ns = NowUnixNanos();
    s.pid = 0;
    if (auto w = SaveState(r.id, s); !w) LogWarn("record the exit of " + r.id + ": " + w.error().message());
  }
  TracePhase("finish: record the exit");
  auto lock = images_->Lock(FileLock::Mode::kExclusive);
  TracePhase("finish: lock the store");
  if (r.host.auto_remove) {
    // Destroy releases the network too.
    if (auto d = Destroy(r.id); !d) LogWarn("remove container " + r.id + ": " + d.error().message());
    return;
  }
  network::PendingOp net = TakeNetworkRelease(r.id);
  (void)images_->driver().Unmount(r.id);
  if (auto d = net.Wait(); !d)
    LogWarn("release the network of " + r.id + ": " + d.error().message());
  TracePhase("finish: release the network, unmount");
}

int Manager::Supervise(const Record& r, const oci::RuntimeSpec& spec, bool attached,
                       int report_fd, int client_fd) {
  signal(SIGPIPE, SIG_IGN);
  std::string dir = ContainerDir(r.id);
  std::string log_path = dir + "/" + r.id + "-json.log";
  JsonLog log(UniqueFd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)));
  UniqueFd devnull = OpenDevNull();
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  runtime::RunOptions ro;
  ro.container_id = r.id;
  ro.no_pivot = r.host.no_pivot;
  ro.die_with_parent = true;
  ro.seccomp_cache = &seccomp_cache_;
  if (!spec.process.terminal) {
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      Error e = Error::FromErrno(errno, "pipe");
      Report(report_fd, "E125 " + e.message());
      if (attached) LogError(e.message());
      Finish(r, 125, false);
      return 125;
    }
    ro.stdio.in = attached && r.config.open_stdin ? 0 : devnull.get();
    ro.stdio.out = out[1];
    ro.stdio.err = err[1];
  }
  UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  oci::RuntimeSpec sp = spec;
  if (attached && spec.process.terminal) {
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
      sp.process.console_height = ws.ws_row;
      sp.process.console_width = ws.ws_col;
    }
  }
  TracePhase("start: log, pipes");
  auto started = CreateAndStart(r, sp, ro);
  TracePhase("start: runtime create, network, start (clone, mounts, pivot_root, exec)");
  out_w.reset();
  err_w.reset();
  if (!started) {
    const Error& e = started.error();
    int code = StartFailureStatus(e);
    {
      auto lock = FileLock::Acquire(dir + "/lock", FileLock::Mode::kExclusive);
      State s = ReadState(r.id).value_or(State{});
      s.error = e.message();
      (void)SaveState(r.id, s);
    }
    Report(report_fd, "E" + std::to_string(code) + " " + e.message());
    if (attached) LogError(e.message());
    Finish(r, code, false);
    return code;
  }
  (void)RecordRunning(r.id, started->pid);
  Report(report_fd, "OK");
  if (report_fd >= 0) close(report_fd);
  TracePhase("start: record running");

  Io io;
  io.log = &log;
  io.echo = attached;
  io.client = client_fd;
  RawTerminal raw;
  io.raw = &raw;
  if (spec.process.terminal) {
    io.master = started->pty_master.get();
    if (attached) {
      CopyWinsize(0, io.master);
      raw.Enter(0);
      if (r.config.open_stdin) io.in = 0;
    }
  } else {
    io.out_r = out_r.get();
    io.err_r = err_r.get();
  }
  Pump(io, started->pidfd.get(), started->pid);
  TracePhase("wait: output until exit");
  int status = runtime::Wait(started->pid).value_or(137);
  StartNetworkRelease(r.id);  // the plugins' DEL runs while the exit is recorded
  bool oom = runtime::OomKilled(spec.linux.cgroups_path).value_or(false);
  TracePhase("wait: reap, oom check");
  (void)runtime::RemoveCgroup(spec.linux.cgroups_path);
  TracePhase("finish: remove the cgroup");
  Finish(r, status, oom);
  return status;
}

int Manager::RunAttached(const std::string& id) {
  auto fail = [&](Error e) {
    LogError(std::move(e).Wrap("start " + id).message());
    return StartFailureStatus(e);
  };
  auto r = Load(id);
  if (!r) return fail(std::move(r).error());
  auto s = GetState(id);
  if (!s) return fail(std::move(s).error());
  if (s->status == "running" || s->status == "paused")
    return fail(Error(Errc::kInvalidArgument, "container " + id + " is already running"));
  TracePhase("start: load the record and state");
  Result<oci::RuntimeSpec> spec = Error(Errc::kInternal, "");
  {
    auto lock = images_->Lock(FileLock::Mode::kExclusive);
    if (!lock) return fail(std::move(lock).error());
    spec = Prepare(*r);
  }
  if (!spec) {
    if (r->host.auto_remove) {
      auto lock = images_->Lock(FileLock::Mode::kExclusive);
      (void)Destroy(id);
    }
    LogError(spec.error().message());
    return 125;
  }
  return SuperviseFromChild(*r, *spec);
}

// Docker's client is not the container's parent, the daemon is: killing `docker run` leaves
// the container running and `--rm` still removes it. Here the monitor is a child in its own
// session (so the terminal's ^C and hang-up reach the client only, which forwards them)
// that outlives us. It inherits our stdio and echoes output to it while we live; a pipe whose
// write end only we hold tells it when we are gone.
int Manager::SuperviseFromChild(const Record& r, const oci::RuntimeSpec& spec) {
  auto fail = [&](Error e) {
    LogError(std::move(e).Wrap("start " + r.id).message());
    if (r.host.auto_remove) {
      auto lock = images_->Lock(FileLock::Mode::kExclusive);
      (void)Destroy(r.id);
    } else {
      (void)images_->driver().Unmount(r.id);
    }
    return 125;
  };
  int life[2];
  if (pipe2(life, O_CLOEXEC) != 0) return fail(Error::FromErrno(errno, "pipe"));
  UniqueFd life_r(life[0]), life_w(life[1]);
  // Blocked before fork: a signal forwarded to the monitor before its Pump runs stays
  // pending (it would kill it otherwise); the container's init unblocks all in its child.
  sigset_t fwd = ForwardedSet(), old;
  sigprocmask(SIG_BLOCK, &fwd, &old);
  fflush(stdout);
  fflush(stderr);
  pid_t m = fork();
  if (m < 0) {
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, nullptr);
    return fail(Error::FromErrno(err, "fork the monitor"));
  }
  if (m == 0) {
    life_w.reset();
    setsid();
    int status = Supervise(r, spec, true, -1, life_r.get());
    _exit(status);
  }
  life_r.reset();
  UniqueFd sfd(signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, m, 0)));
  for (;;) {
    struct pollfd p[2] = {{pidfd.get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (!pidfd || !sfd) break;  // cannot forward: just wait
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents) break;
    struct signalfd_siginfo si;
    while (read(sfd.get(), &si, sizeof(si)) == sizeof(si))
      ::kill(m, static_cast<int>(si.ssi_signo));  // the monitor passes them on (SIGWINCH: size)
  }
  int status = runtime::Wait(m).value_or(125);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return status;
}

Result<void> Manager::StartDetached(const std::string& id) {
  Record r = TRY(Load(id));
  State s = TRY(GetState(id));
  if (s.status == "running" || s.status == "paused") return Ok();  // docker: no-op
  oci::RuntimeSpec spec;
  {
    FileLock lock = TRY(images_->Lock(FileLock::Mode::kExclusive));
    spec = TRY(Prepare(r));
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  fflush(stdout);
  fflush(stderr);
  pid_t c = fork();
  if (c < 0) return Error::FromErrno(errno, "fork the monitor");
  if (c == 0) {
    rd.reset();
    setsid();
    pid_t g = fork();
    if (g != 0) _exit(g < 0 ? 1 : 0);
    UniqueFd null = OpenDevNull();
    for (int i = 0; i < 3; ++i) dup2(null.get(), i);
    if (chdir("/") != 0) _exit(1);
    int w = wr.release();
    (void)Supervise(r, spec, false, w);
    _exit(0);
  }
  wr.reset();
  int st;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  std::string msg = ReadAll(rd.get(), "monitor report").value_or("");
  if (StartsWith(msg, "OK")) return Ok();
  if (StartsWith(msg, "E")) {
    int code = atoi(msg.c_str() + 1);
    size_t sp = msg.find(' ');
    std::string text = sp == std::string::npos ? msg : msg.substr(sp + 1);
    Errc ec = code == 127 ? Errc::kNotFound : code == 126 ? Errc::kPermission : Errc::kInternal;
    return Error(ec, text);
  }
  return Error(Errc::kInternal, "the monitor of " + id + " exited before starting it");
}

Result<int> Manager::Exec(const std::string& id, const ExecRequest& req) {
  State s = TRY(GetState(id));
  if (s.status != "running")
    return Error(Errc::kInvalidArgument, "container " + id + " is not running");
  json sj = TRY(ReadJsonFile(ContainerDir(id) + "/config.json"));
  oci::RuntimeSpec spec = TRY(oci::RuntimeSpecFromJson(sj));
  oci::Process p = spec.process;
  p.args = req.args;
  p.terminal = req.tty;
  if (req.tty) {
    p.env.push_back("TERM=xterm");
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
      p.console_height = ws.ws_row;
      p.console_width = ws.ws_col;
    }
  }
  for (const std::string& e : req.env) {
    std::string key = e.substr(0, e.find('='));
    std::erase_if(p.env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
    if (e.find('=') != std::string::npos) {
      p.env.push_back(e);
    } else if (const char* v = getenv(e.c_str())) {
      p.env.push_back(e + "=" + v);
    }
  }
  if (!req.workdir.empty()) p.cwd = req.workdir;
  if (!req.user.empty()) {
    Dir root = TRY(Dir::Open("/proc/" + std::to_string(s.pid) + "/root"));
    p.user = TRY(ResolveUser(root, req.user));
  }
  UniqueFd devnull = OpenDevNull();
  runtime::ExecOptions eo;
  eo.seccomp_cache = &seccomp_cache_;
  if (!req.tty && !req.interactive) eo.stdio.in = devnull.get();
  runtime::Started st = TRY(runtime::Exec(s.pid, spec, p, eo));
  devnull.reset();
  Io io;
  io.echo = true;
  RawTerminal raw;
  if (req.tty) {
    io.master = st.pty_master.get();
    CopyWinsize(0, io.master);
    raw.Enter(0);
    if (req.interactive) io.in = 0;
  }
  Pump(io, st.pidfd.get(), st.pid);
  return runtime::Wait(st.pid);
}

Result<void> Manager::Logs(const std::string& id, bool follow, int64_t tail) {
  std::string path = ContainerDir(id) + "/" + id + "-json.log";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd && errno != ENOENT) return Error::FromErrno(errno, "open " + path);
  std::string pending;
  auto print = [&](std::string_view line) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    std::string text = j.value("log", "");
    int out = j.value("stream", "stdout") == "stderr" ? 2 : 1;
    (void)WriteAll(out, text, "stdout");
  };
  auto read_more = [&]() -> bool {  // true if anything new was read
    if (!fd) fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    char buf[65536];
    bool any = false;
    ssize_t n;
    while ((n = read(fd.get(), buf, sizeof(buf))) > 0) {
      pending.append(buf, n);
      any = true;
    }
    return any;
  };
  read_more();
  std::vector<std::string_view> lines;
  size_t start = 0, nl;
  while ((nl = pending.find('\n', start)) != std::string::npos) {
    lines.push_back(std::string_view(pending).substr(start, nl - start));
    start = nl + 1;
  }
  size_t first = tail >= 0 && static_cast<size_t>(tail) < lines.size() ? lines.size() - tail : 0;
  for (size_t i = first; i < lines.size(); ++i) print(lines[i]);
  pending.erase(0, start);
  if (!follow) return Ok();
  for (;;) {
    auto s = GetState(id);
    bool running = s && (s->status == "running" || s->status == "paused");
    bool got = read_more();
    size_t b = 0;
    while ((nl = pending.find('\n', b)) != std::string::npos) {
      print(std::string_view(pending).substr(b, nl - b));
      b = nl + 1;
    }
    pending.erase(0, b);
    if (!running && !got) break;
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Ok();
}

}  // namespace shale::container
