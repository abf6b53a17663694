#include "runtime/channel.h"

#include <sys/socket.h>

#include <cstring>

namespace shale::runtime {
namespace {

struct Wire {
  uint8_t stage;
  int32_t err;
  char text[2048];
};

}  // namespace

Result<std::pair<Channel, Channel>> Channel::Pair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Error::FromErrno(errno, "socketpair for the container's stage channel");
  return std::pair<Channel, Channel>(Channel(UniqueFd(sv[0])), Channel(UniqueFd(sv[1])));
}

Result<void> Channel::Send(Stage s, int err, std::string_view text) {
  Wire w;
  w.stage = static_cast<uint8_t>(s);
  w.err = err;
  size_t n = std::min(text.size(), sizeof(w.text));
  if (n) std::memcpy(w.text, text.data(), n);  // an empty view's data() may be null (UB)
  size_t len = offsetof(Wire, text) + n;
  ssize_t r;
  do {
    r = ::send(fd_.get(), &w, len, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::FromErrno(errno, "send on stage channel");
  return Ok();
}

Result<void> SendFdOn(int sock, int fd, const void* data, size_t len, std::string_view what) {
  struct iovec iov = {const_cast<void*>(data), len};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t r;
  do {
    r = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::FromErrno(errno, "send an fd " + std::string(what));
  // A stream socket may take less when a signal interrupts the send part-way.
  if (static_cast<size_t>(r) != len)
    return Error(Errc::kIo, "send an fd " + std::string(what) + ": short send of " +
                                std::to_string(r) + " of " + std::to_string(len) + " bytes");
  return Ok();
}

Result<void> Channel::SendFd(Stage s, int fd) {
  Wire w;
  w.stage = static_cast<uint8_t>(s);
  w.err = 0;
  return SendFdOn(fd_.get(), fd, &w, offsetof(Wire, text), "on the stage channel");
}

Result<FdMessage> ReceiveFdOn(int sock, void* data, size_t len, std::string_view what) {
  struct iovec iov = {data, len};
  alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t r;
  do {
    r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::FromErrno(errno, "receive " + std::string(what));
  FdMessage m;
  m.bytes = static_cast<size_t>(r);
  m.truncated = msg.msg_flags & MSG_CTRUNC;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (!m.fd) m.fd.reset(fd); else ::close(fd);
    }
  }
  return m;
}

Result<UniqueFd> Channel::ReceiveFd(Stage s) {
  Wire w;
  FdMessage got = TRY(ReceiveFdOn(fd_.get(), &w, sizeof(w), "on the stage channel"));
  size_t r = got.bytes;
  std::string want = std::to_string(static_cast<int>(s));
  if (r == 0) return Error(Errc::kInternal, "container process exited before stage " + want);
  if (static_cast<size_t>(r) < offsetof(Wire, text))
    return Error(Errc::kInternal, "stage channel: short message");
  Message m;
  m.stage = static_cast<Stage>(w.stage);
  m.err = w.err;
  m.text.assign(w.text, r - offsetof(Wire, text));
  if (m.stage == Stage::kExecFailed) return ToError(m);
  if (m.stage != s)
    return Error(Errc::kInternal, "stage channel: expected stage " + want + ", got " +
                                      std::to_string(static_cast<int>(m.stage)));
  if (got.truncated)
    return Error(Errc::kInternal, "stage channel: the fd of stage " + want + " was truncated");
  if (!got.fd)
    return Error(Errc::kInternal, "stage channel: stage " + want + " came without its fd");
  return std::move(got.fd);
}

Result<Message> Channel::Receive() {
  Wire w;
  ssize_t r;
  do {
    r = ::recv(fd_.get(), &w, sizeof(w), 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::FromErrno(errno, "recv on stage channel");
  Message m;
  if (r == 0) {
    m.eof = true;
    return m;
  }
  if (static_cast<size_t>(r) < offsetof(Wire, text))
    return Error(Errc::kInternal, "stage channel: short message");
  m.stage = static_cast<Stage>(w.stage);
  m.err = w.err;
  m.text.assign(w.text, r - offsetof(Wire, text));
  return m;
}

Error Channel::ToError(const Message& m) {
  Errc code = m.err ? ErrcFromErrno(m.err) : Errc::kInternal;
  return Error(code, m.text);
}

Result<void> Channel::Expect(Stage s) {
  Message m = TRY(Receive());
  if (m.eof)
    return Error(Errc::kInternal, "container init exited before reaching stage " +
                                      std::to_string(static_cast<int>(s)));
  if (m.stage == s) return Ok();
  if (m.stage == Stage::kExecFailed) return ToError(m);
  return Error(Errc::kInternal, "stage channel: expected stage " +
                                    std::to_string(static_cast<int>(s)) + ", got " +
                                    std::to_string(static_cast<int>(m.stage)));
}

}  // namespace shale::runtime
