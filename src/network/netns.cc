#include "network/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fd.h"
#include "util/fs.h"

namespace shale::network {

std::string NetnsDir() {
  if (const char* d = getenv("SHALE_NETNS_DIR"); d && *d) return d;
  return "/run/shale/netns";
}

std::string NetnsPath(const std::string& container_id) {
  return NetnsDir() + "/" + container_id;
}

Result<void> CreateNetns(const std::string& path) {
  TRY(MakeDirsAbs(Dirname(path), 0700));
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400));
    if (!fd) return Error::FromErrno(errno, "create the netns file " + path);
  }
  // A child unshares: our own namespace stays the host's. The child shares our mount
  // namespace, so its bind mount is ours.
  int rep[2];
  if (pipe2(rep, O_CLOEXEC) != 0) {
    unlink(path.c_str());
    return Error::FromErrno(errno, "pipe");
  }
  UniqueFd rd(rep[0]), wr(rep[1]);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    unlink(path.c_str());
    return Error::FromErrno(e, "fork to create a network namespace");
  }
  if (pid == 0) {
    int err = 0;
    if (unshare(CLONE_NEWNET) != 0)
      err = errno;
    else if (mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      err = -errno;
    (void)!write(wr.get(), &err, sizeof(err));
    _exit(0);
  }
  wr.reset();
  int err = 0;
  ssize_t n = read(rd.get(), &err, sizeof(err));
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof(err) || err != 0) {
    unlink(path.c_str());
    if (n != sizeof(err)) return Error(Errc::kInternal, "create a network namespace: no report");
    if (err > 0) return Error::FromErrno(err, "unshare a network namespace");
    return Error::FromErrno(-err, "bind the network namespace at " + path);
  }
  return Ok();
}

Result<void> RemoveNetns(const std::string& path) {
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return Error::FromErrno(errno, "unmount the netns file " + path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Error::FromErrno(errno, "remove the netns file " + path);
  return Ok();
}

}  // namespace shale::network
