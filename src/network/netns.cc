#include "network/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "util/fd.h"
#include "util/fs.h"

namespace shale::network {
namespace {

// `lo` up in the new namespace, as docker does in every one it makes. The loopback CNI plugin
// does the same, but as one more Go binary to start it costs ~10 ms per container; one ioctl
// here costs nothing (the runtime does the same for --network none). Failure shows later, as
// 127.0.0.1 unreachable, not as a failed start: the namespace is still usable.
void BringUpLo() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return;
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return;
  ifr.ifr_flags |= IFF_UP;
  (void)ioctl(sock.get(), SIOCSIFFLAGS, &ifr);
}

}  // namespace

std::string NetnsDir() {
  if (const char* d = getenv("SHALE_NETNS_DIR"); d && *d) return d;
  return "/run/shale/netns";
}

std::string NetnsPath(const std::string& container_id) {
  return NetnsDir() + "/" + container_id;
}

Result<void> CreateNetns(const std::string& path) {
  TRY(MakeDirsAbs(Dirname(path), 0700));
  UniqueFd home(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) return Error::FromErrno(errno, "open our network namespace");
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400));
    if (!fd) return Error::FromErrno(errno, "create the netns file " + path);
  }
  Result<void> made = Ok();
  if (unshare(CLONE_NEWNET) != 0) {
    made = Error::FromErrno(errno, "unshare a network namespace");
  } else {
    if (mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      made = Error::FromErrno(errno, "bind the network namespace at " + path);
    else
      BringUpLo();
    // The plugins this process runs next must start in the host's namespace.
    if (setns(home.get(), CLONE_NEWNET) != 0) {
      int e = errno;
      (void)RemoveNetns(path);
      return Error::FromErrno(e, "return to the host network namespace");
    }
  }
  if (!made) unlink(path.c_str());
  return made;
}

Result<void> RemoveNetns(const std::string& path) {
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return Error::FromErrno(errno, "unmount the netns file " + path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Error::FromErrno(errno, "remove the netns file " + path);
  return Ok();
}

}  // namespace shale::network
