// The typed parent <-> child stage channel: one SOCK_SEQPACKET socketpair, one message per
// stage (youki's message enum in place of crun's numbered syncs). Both ends are CLOEXEC, so
// the parent reads EOF once the child's execve succeeded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/fd.h"

namespace shale::runtime {

enum class Stage : uint8_t {
  kChildReady,
  kWriteIdMaps,
  kIdMapsWritten,
  kMountsDone,    // child -> parent: mounts done, before pivot_root (runtime hooks now)
  kReadyToExec,   // child -> parent: every step done, execve next
  kExecFailed,    // child -> parent: a step or execve failed; carries errno and text
  kStart,         // parent -> child: cgroup joined, go on
  kTerminal,      // child -> parent: carries the pty master (SCM_RIGHTS), opened in the
                  // container's own devpts
  kHooksDone,     // parent -> child: prestart/createRuntime hooks ran; text is the init's
                  // pid as the runtime sees it (for the hooks' state JSON)
  kExec,          // parent -> child: start (leave `created` for execve), when no exec fifo
  kChildPid,      // child -> parent: text is the pid of the process it forked (rootless
                  // exec's helper, which forks the process proper inside the pid namespace)
  kSeccompFd,     // child -> parent: carries the seccomp notify fd (SCM_RIGHTS) of a filter
                  // with SCMP_ACT_NOTIFY, before kReadyToExec; the parent passes it to
                  // linux.seccomp.listenerPath
};

struct Message {
  Stage stage = Stage::kExecFailed;
  int err = 0;          // errno of the failure, 0 if none
  std::string text;
  bool eof = false;     // the other end is closed (for the parent: execve succeeded)
};

// sendmsg of `len` bytes of `data` with `fd` attached (SCM_RIGHTS) on the unix socket `sock`;
// the caller keeps its copy of `fd`. `what` ("to --console-socket x") names it in errors.
Result<void> SendFdOn(int sock, int fd, const void* data, size_t len, std::string_view what);

// One recvmsg of up to `len` bytes into `data` on `sock`, and the first fd that came with them
// (CLOEXEC; any further ones are closed, so none leaks). `bytes` 0 is the peer's EOF.
struct FdMessage {
  size_t bytes = 0;
  UniqueFd fd;
  bool truncated = false;  // MSG_CTRUNC: an fd did not fit
};
Result<FdMessage> ReceiveFdOn(int sock, void* data, size_t len, std::string_view what);

class Channel {
 public:
  Channel() = default;
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}
  // Makes a connected pair {parent, child}.
  static Result<std::pair<Channel, Channel>> Pair();

  Result<void> Send(Stage s, int err = 0, std::string_view text = {});
  Result<Message> Receive();
  // A message with one fd attached (SCM_RIGHTS); the caller keeps its own copy of `fd`.
  Result<void> SendFd(Stage s, int fd);
  // Receives a message of stage `s` carrying an fd (CLOEXEC on this side). A kExecFailed
  // becomes the child's error, as in Expect.
  Result<UniqueFd> ReceiveFd(Stage s);
  // Receives and checks the stage. A kExecFailed becomes the child's error: its errno decides
  // the category (ENOENT -> kNotFound, EACCES -> kPermission); text is the message.
  Result<void> Expect(Stage s);
  // Turns a kExecFailed message into an Error.
  static Error ToError(const Message& m);

  int fd() const { return fd_.get(); }
  void Close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace shale::runtime
