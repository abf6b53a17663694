// A seccomp agent for the tests of linux.seccomp.listenerPath (SCMP_ACT_NOTIFY):
//
//   shale_seccomp_agent SOCKET STATE_FILE [ERRNO]
//
// Listens on the unix socket SOCKET, accepts one connection, reads the container process
// state the runtime sends (JSON, the notify fd in SCM_RIGHTS) up to EOF and writes it to
// STATE_FILE (temp file + rename: it appears complete or not at all). Then it answers the
// notifications: mkdir and mkdirat fail with ERRNO (default EROFS) without being made, every
// other syscall goes on as if unfiltered (SECCOMP_USER_NOTIF_FLAG_CONTINUE). It exits 0 when
// the fd hangs up (every process under the filter has exited), 1 on an error.
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "runtime/channel.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/fs.h"

namespace shale {
namespace {

// seccomp_notify_alloc hands out both buffers; seccomp_notify_free takes both.
struct NotifyBuffers {
  struct seccomp_notif* req = nullptr;
  struct seccomp_notif_resp* resp = nullptr;
  ~NotifyBuffers() { seccomp_notify_free(req, resp); }
};

Result<UniqueFd> Listen(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return Error(Errc::kInvalidArgument, "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error::FromErrno(errno, "socket");
  if (::bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0)
    return Error::FromErrno(errno, "bind " + path);
  if (::listen(sock.get(), 1) != 0) return Error::FromErrno(errno, "listen on " + path);
  return sock;
}

// Reads the whole message up to EOF; the notify fd comes with the first bytes.
Result<std::pair<std::string, UniqueFd>> ReceiveState(int conn) {
  std::string data;
  UniqueFd notify;
  for (;;) {
    char buf[4096];
    runtime::FdMessage m = TRY(runtime::ReceiveFdOn(conn, buf, sizeof(buf), "the container process state"));
    if (m.fd) {
      if (notify) return Error(Errc::kCorrupt, "more than one fd came with the state");
      notify = std::move(m.fd);
    }
    if (m.bytes == 0) break;
    data.append(buf, m.bytes);
  }
  if (!notify) return Error(Errc::kCorrupt, "the state came without the seccomp fd");
  return std::pair<std::string, UniqueFd>(std::move(data), std::move(notify));
}

Result<void> Answer(int notify, int err) {
  NotifyBuffers b;
  if (int r = seccomp_notify_alloc(&b.req, &b.resp); r != 0)
    return Error::FromErrno(-r, "seccomp_notify_alloc");
  int lost = 0;  // notifications gone in a row before we received them
  for (;;) {
    struct pollfd p = {notify, POLLIN, 0};
    if (::poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "poll the seccomp fd");
    }
    if (p.revents & (POLLHUP | POLLERR)) return Ok();  // no process left under the filter
    // The kernel refuses (EINVAL) a request buffer that is not all zeros.
    std::memset(b.req, 0, sizeof(*b.req));
    if (int r = seccomp_notify_receive(notify, b.req); r != 0) {
      // libseccomp reports every failed ioctl as ECANCELED; errno is the ioctl's. ENOENT:
      // the notification went away before we took it (its caller was signalled or died).
      int err_now = r == -ECANCELED ? errno : -r;
      if ((err_now == ENOENT || err_now == EINTR) && ++lost < 1000) continue;
      return Error::FromErrno(err_now, "seccomp_notify_receive");
    }
    lost = 0;
    char* name = seccomp_syscall_resolve_num_arch(b.req->data.arch, b.req->data.nr);
    bool refuse = name && (std::strcmp(name, "mkdir") == 0 || std::strcmp(name, "mkdirat") == 0);
    std::free(name);
    std::memset(b.resp, 0, sizeof(*b.resp));
    b.resp->id = b.req->id;
    if (refuse) {
      b.resp->error = -err;  // the syscall is not made
    } else {
      b.resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    if (int r = seccomp_notify_respond(notify, b.resp); r != 0) {
      int err_now = r == -ECANCELED ? errno : -r;
      if (err_now != ENOENT)  // the caller is gone: nobody to answer
        return Error::FromErrno(err_now, "seccomp_notify_respond");
    }
  }
}

Result<void> Run(const std::string& socket_path, const std::string& state_file, int err) {
  UniqueFd sock = TRY(Listen(socket_path));
  UniqueFd conn;
  do {
    conn.reset(::accept4(sock.get(), nullptr, nullptr, SOCK_CLOEXEC));
  } while (!conn && errno == EINTR);
  if (!conn) return Error::FromErrno(errno, "accept on " + socket_path);
  sock.reset();
  (void)::unlink(socket_path.c_str());
  auto [state, notify] = TRY(ReceiveState(conn.get()));
  conn.reset();
  TRY(WriteFileAtomic(state_file, state, 0644));
  return Answer(notify.get(), err);
}

}  // namespace
}  // namespace shale

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s SOCKET STATE_FILE [ERRNO]\n", argv[0]);
    return 2;
  }
  int err = argc == 4 ? std::atoi(argv[3]) : EROFS;
  if (auto r = shale::Run(argv[1], argv[2], err); !r) {
    std::fprintf(stderr, "shale_seccomp_agent: %s\n", r.error().message().c_str());
    return 1;
  }
  return 0;
}
