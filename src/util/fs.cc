#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

namespace shale {

namespace {

// Reads to EOF; more than `max` bytes is kInvalidArgument.
Result<std::string> ReadUpTo(int fd, size_t max, std::string_view name) {
  std::string out;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    out.reserve(std::min<size_t>(static_cast<size_t>(st.st_size), max));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read " + std::string(name));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max)
      return Error(Errc::kInvalidArgument, std::string(name) + ": larger than " +
                                               std::to_string(max) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

Result<std::string> ReadAll(int fd, std::string_view name) {
  return ReadUpTo(fd, std::numeric_limits<size_t>::max(), name);
}

Result<void> WriteAll(int fd, std::string_view data, std::string_view name) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "write " + std::string(name));
    }
    data.remove_prefix(n);
  }
  return Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  return ReadAll(fd, path);
}

static std::string RandomSuffix() {
  static std::mt19937_64 rng(std::random_device{}() ^ (uint64_t)getpid());
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", (unsigned long long)rng());
  return buf;
}

Result<void> WriteFileAtomicAt(int dirfd, const std::string& leaf, std::string_view data,
                               mode_t mode, std::string_view dir_name) {
  std::string tmp = "." + leaf + ".tmp-" + RandomSuffix();
  std::string shown = std::string(dir_name) + "/" + leaf;
  int fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Error::FromErrno(errno, "create " + shown);
  UniqueFd owner(fd);
  auto fail = [&](Error e) -> Result<void> {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return e;
  };
  if (auto r = WriteAll(fd, data, shown); !r) return fail(std::move(r).error());
  if (fchmod(fd, mode) != 0) return fail(Error::FromErrno(errno, "fchmod " + shown));
  if (fsync(fd) != 0) return fail(Error::FromErrno(errno, "fsync " + shown));
  owner.reset();
  if (renameat(dirfd, tmp.c_str(), dirfd, leaf.c_str()) != 0)
    return fail(Error::FromErrno(errno, "rename " + shown));
  if (fsync(dirfd) != 0) return Error::FromErrno(errno, "fsync " + std::string(dir_name));
  return Ok();
}

Result<void> WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string dir = Dirname(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Error::FromErrno(errno, "open " + dir);
  UniqueFd owner(dfd);
  return WriteFileAtomicAt(dfd, Basename(path), data, mode, dir);
}

Result<void> WriteFileReplace(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return Error::FromErrno(errno, "open " + tmp);
  TRY(WriteAll(fd.get(), data, tmp));
  fd.reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) return Error::FromErrno(errno, "rename " + tmp);
  return Ok();
}

Result<void> FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  if (fsync(fd) != 0) return Error::FromErrno(errno, "fsync " + path);
  return Ok();
}

Result<void> SyncFsPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  if (syncfs(fd) != 0) return Error::FromErrno(errno, "syncfs " + path);
  return Ok();
}

Result<void> MakeDirsAbs(const std::string& path, mode_t mode) {
  if (path.empty()) return Ok();
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Ok();
    return Error(Errc::kAlreadyExists, "mkdir " + path + ": exists and is not a directory");
  }
  std::string parent = Dirname(path);
  if (parent != path) TRY(MakeDirsAbs(parent, mode));
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return Error::FromErrno(errno, "mkdir " + path);
  return Ok();
}

Result<void> RemoveTreeAt(int dirfd, const std::string& name, std::string_view dir_name) {
  std::string shown = std::string(dir_name) + "/" + name;
  struct stat st;
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok();
    return Error::FromErrno(errno, "stat " + shown);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
      return Error::FromErrno(errno, "unlink " + shown);
    return Ok();
  }
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0) return Ok();
  if (errno == EBUSY) return Error::FromErrno(errno, "rmdir " + shown + " (still mounted?)");
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + shown);
  struct stat inner;
  if (fstat(fd, &inner) == 0 && inner.st_dev != st.st_dev) {
    close(fd);
    return Error(Errc::kBusy, "remove " + shown + ": a file system is mounted there");
  }
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return Error::FromErrno(errno, "fdopendir " + shown);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  Result<void> res;
  for (const auto& n : names) {
    res = RemoveTreeAt(::dirfd(d), n, shown);
    if (!res) break;
  }
  closedir(d);
  TRY(std::move(res));
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return Error::FromErrno(errno, "rmdir " + shown);
  return Ok();
}

Result<void> RemoveTreeAbs(const std::string& path) {
  std::string dir = Dirname(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == ENOENT) return Ok();
    return Error::FromErrno(errno, "open " + dir);
  }
  UniqueFd owner(dfd);
  return RemoveTreeAt(dfd, Basename(path), dir);
}

Result<void> RenameAbs(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return Error::FromErrno(errno, "rename " + from + " -> " + to);
  return Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (!d) return Error::FromErrno(errno, "opendir " + path);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<std::string>> ListDirAt(int dirfd, std::string_view shown) {
  int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dfd < 0) return Error::FromErrno(errno, "dup " + std::string(shown));
  DIR* d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return Error::FromErrno(errno, "fdopendir " + std::string(shown));
  }
  // The duplicate shares the file offset with dirfd: start from the top whatever it was.
  rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  int err = errno;
  closedir(d);
  if (err != 0) return Error::FromErrno(err, "readdir " + std::string(shown));
  std::sort(names.begin(), names.end());
  return names;
}

static Result<int64_t> DiskUsageAt(int dirfd, const std::string& shown) {
  int64_t total = 0;
  int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return Error::FromErrno(errno, "fdopendir " + shown);
  }
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) total += st.st_size;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;
      auto r = DiskUsageAt(sub, shown + "/" + e->d_name);
      close(sub);
      if (r) total += *r;
    }
  }
  closedir(d);
  return total;
}

Result<int64_t> DiskUsage(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  return DiskUsageAt(fd, path);
}

std::string Dirname(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return std::string(path);
  return std::string(path.substr(slash + 1));
}

Result<std::string> ReadRegularFd(int fd, size_t max, std::string_view name) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Error::FromErrno(errno, "fstat " + std::string(name));
  if (!S_ISREG(st.st_mode))
    return Error(Errc::kInvalidArgument, std::string(name) + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max)
    return Error(Errc::kInvalidArgument, std::string(name) + ": larger than " +
                                             std::to_string(max) + " bytes");
  return ReadUpTo(fd, max, name);  // bounded again: it may grow while we read
}

Result<UniqueFd> ReopenRegular(int path_fd, std::string_view name) {
  struct stat st;
  if (::fstat(path_fd, &st) != 0) return Error::FromErrno(errno, "fstat " + std::string(name));
  if (!S_ISREG(st.st_mode))
    return Error(Errc::kInvalidArgument, std::string(name) + ": not a regular file");
  std::string proc = "/proc/self/fd/" + std::to_string(path_fd);
  int fd = ::open(proc.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + std::string(name));
  return UniqueFd(fd);
}

Result<std::string> ReadRegularFile(const std::string& path, size_t max) {
  int pfd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (pfd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd path_fd(pfd);
  UniqueFd fd = TRY(ReopenRegular(path_fd.get(), path));
  return ReadRegularFd(fd.get(), max, path);
}

Result<UniqueFd> SpoolToAnonymousFile(int in, const std::string& dir, std::string_view prefix,
                                      std::string_view name) {
  TRY(MakeDirsAbs(dir, 0700));
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    std::string tmpl = dir + "/" + std::string(prefix) + "XXXXXX";
    fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd >= 0) (void)::unlink(tmpl.c_str());
  }
  if (fd < 0) return Error::FromErrno(errno, "spool " + std::string(name) + " in " + dir);
  UniqueFd out(fd);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read " + std::string(name));
    }
    if (n == 0) break;
    TRY(WriteAll(out.get(), std::string_view(buf.data(), static_cast<size_t>(n)),
                 "spool of " + std::string(name)));
  }
  if (::lseek(out.get(), 0, SEEK_SET) < 0)
    return Error::FromErrno(errno, "lseek spool of " + std::string(name));
  return out;
}

Result<ScopedTempDir> ScopedTempDir::Make(const std::string& parent, std::string_view prefix) {
  TRY(MakeDirsAbs(parent, 0700));
  std::string tmpl = parent + "/" + std::string(prefix) + "XXXXXX";
  if (!mkdtemp(tmpl.data())) return Error::FromErrno(errno, "mkdtemp " + tmpl);
  ScopedTempDir t;
  t.path_ = tmpl;
  return t;
}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& o) noexcept {
  if (this != &o) {
    if (!path_.empty()) (void)RemoveTreeAbs(path_);
    path_ = std::exchange(o.path_, "");
  }
  return *this;
}

ScopedTempDir::~ScopedTempDir() {
  if (!path_.empty()) (void)RemoveTreeAbs(path_);
}

static Result<FileLock> LockImpl(const std::string& path, FileLock::Mode mode, bool wait,
                                 UniqueFd* out) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Error::FromErrno(errno, "open lock " + path);
  UniqueFd owner(fd);
  int op = (mode == FileLock::Mode::kShared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
  while (flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Error(Errc::kBusy, "lock " + path + ": held by another shale process");
    return Error::FromErrno(errno, "flock " + path);
  }
  *out = std::move(owner);
  return FileLock();
}

Result<FileLock> FileLock::Acquire(const std::string& path, Mode mode) {
  UniqueFd fd;
  TRY(LockImpl(path, mode, true, &fd));
  FileLock l;
  l.fd_ = std::move(fd);
  return l;
}

Result<FileLock> FileLock::TryAcquire(const std::string& path, Mode mode) {
  UniqueFd fd;
  TRY(LockImpl(path, mode, false, &fd));
  FileLock l;
  l.fd_ = std::move(fd);
  return l;
}

}  // namespace shale
