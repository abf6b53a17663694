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
  std::memcpy(w.text, text.data(), n);
  size_t len = offsetof(Wire, text) + n;
  ssize_t r;
  do {
    r = ::send(fd_.get(), &w, len, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::FromErrno(errno, "send on stage channel");
  return Ok();
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
