#include "util/dir.h"

#include <dirent.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "util/fs.h"

namespace shale {
namespace {

long SysOpenat2(int dirfd, const char* path, open_how* how) {
  return syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

std::string Normalize(std::string_view rel) {
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  if (rel.empty()) return ".";
  return std::string(rel);
}

}  // namespace

bool SplitParentLeaf(std::string_view rel, std::string* parent, std::string* leaf) {
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  while (rel.size() >= 2 && rel.substr(0, 2) == "./") rel.remove_prefix(2);
  while (!rel.empty() && rel.back() == '/') rel.remove_suffix(1);
  size_t slash = rel.rfind('/');
  if (slash == std::string_view::npos) {
    *parent = ".";
    *leaf = std::string(rel);
  } else {
    *parent = std::string(rel.substr(0, slash));
    *leaf = std::string(rel.substr(slash + 1));
  }
  return !leaf->empty() && *leaf != "." && *leaf != "..";
}

Result<UniqueFd> OpenInRoot(int root_fd, std::string_view rel, int flags, mode_t mode,
                            std::string_view root_name) {
  std::string p = Normalize(rel);
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = SysOpenat2(root_fd, p.c_str(), &how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || errno == EAGAIN) continue;
    return Error::FromErrno(errno, "openat2 " + std::string(root_name) + "/" + p);
  }
}

Result<Dir> Dir::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  return Dir(UniqueFd(fd), path);
}

Result<Dir> Dir::Create(const std::string& path, mode_t mode) {
  TRY(MakeDirsAbs(path, mode));
  return Open(path);
}

Result<UniqueFd> Dir::OpenAt(std::string_view rel, int flags, mode_t mode) const {
  return OpenInRoot(fd_.get(), rel, flags, mode, path_);
}

Result<Dir> Dir::OpenDir(std::string_view rel) const {
  UniqueFd fd = TRY(OpenAt(rel, O_RDONLY | O_DIRECTORY));
  return Dir(std::move(fd), Join(rel));
}

Result<Dir> Dir::MakeDirs(std::string_view rel, mode_t mode) const {
  std::string p = Normalize(rel);
  if (p == ".") return Dup();
  auto existing = OpenDir(p);
  if (existing) return existing;
  std::string parent, leaf;
  if (!SplitParentLeaf(p, &parent, &leaf))
    return Error(Errc::kInvalidArgument, "mkdir " + Join(rel) + ": invalid path");
  Dir pd = TRY(MakeDirs(parent, mode));
  if (mkdirat(pd.fd(), leaf.c_str(), mode) != 0 && errno != EEXIST)
    return Error::FromErrno(errno, "mkdirat " + Join(rel));
  return pd.OpenDir(leaf);
}

Result<void> Dir::RemoveTree(std::string_view rel) const {
  std::string parent, leaf;
  if (!SplitParentLeaf(rel, &parent, &leaf))
    return Error(Errc::kInvalidArgument, "remove " + Join(rel) + ": invalid path");
  auto pd = OpenDir(parent);
  if (!pd) {
    if (pd.error().code() == Errc::kNotFound) return Ok();
    return std::move(pd).error();
  }
  return RemoveTreeAt(pd->fd(), leaf, pd->path());
}

Result<bool> Dir::Exists(std::string_view rel) const {
  auto fd = OpenAt(rel, O_PATH | O_NOFOLLOW);
  if (fd) return true;
  if (fd.error().code() == Errc::kNotFound) return false;
  return std::move(fd).error();
}

Result<std::string> Dir::ReadFile(std::string_view rel) const {
  UniqueFd fd = TRY(OpenAt(rel, O_RDONLY));
  return ReadAll(fd.get(), Join(rel));
}

Result<std::string> Dir::ReadRegularFile(std::string_view rel, size_t max) const {
  // O_PATH first: a device node or FIFO is never opened (no driver open, no blocking).
  UniqueFd path_fd = TRY(OpenAt(rel, O_PATH));
  UniqueFd fd = TRY(ReopenRegular(path_fd.get(), Join(rel)));
  return ReadRegularFd(fd.get(), max, Join(rel));
}

Result<void> Dir::WriteFileAtomic(std::string_view rel, std::string_view data, mode_t mode) const {
  std::string parent, leaf;
  if (!SplitParentLeaf(rel, &parent, &leaf))
    return Error(Errc::kInvalidArgument, "write " + Join(rel) + ": invalid path");
  Dir pd = TRY(OpenDir(parent));
  return WriteFileAtomicAt(pd.fd(), leaf, data, mode, pd.path());
}

Dir Dir::Dup() const {
  return Dir(UniqueFd(fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0)), path_);
}

std::string Dir::Join(std::string_view rel) const {
  std::string r = Normalize(rel);
  if (r == ".") return path_;
  if (!path_.empty() && path_.back() == '/') return path_ + r;
  return path_ + "/" + r;
}

}  // namespace shale
