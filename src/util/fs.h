// File-system helpers for trusted paths (the store's own directories) and raw fds.
// Untrusted paths go through Dir (dir.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace shale {

Result<std::string> ReadAll(int fd, std::string_view name);
Result<void> WriteAll(int fd, std::string_view data, std::string_view name);
Result<std::string> ReadFile(const std::string& path);
// Reads what `fd` refers to if it is a regular file of at most `max` bytes; a device, FIFO,
// socket or directory, or a bigger file, is kInvalidArgument naming `name`. Open such files
// with O_NONBLOCK so a FIFO cannot block the open itself.
Result<std::string> ReadRegularFd(int fd, size_t max, std::string_view name);
// An O_PATH fd reopened for reading if it is a regular file (kInvalidArgument otherwise):
// a device or FIFO is never opened.
Result<UniqueFd> ReopenRegular(int path_fd, std::string_view name);
// O_PATH open, ReopenRegular, ReadRegularFd: for files a user or an image hands us.
Result<std::string> ReadRegularFile(const std::string& path, size_t max);
// Temp file beside the target, fsync, rename, fsync the directory (leveldb SetCurrentFile).
Result<void> WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// Temp file beside the target, then rename, without fsync: readers never see a torn file,
// and a crash of the process cannot leave one; for records that need not outlive a power
// cut (run state, the network cache: what they describe does not survive one either).
Result<void> WriteFileReplace(const std::string& path, std::string_view data, mode_t mode = 0600);
Result<void> WriteFileAtomicAt(int dirfd, const std::string& leaf, std::string_view data,
                               mode_t mode, std::string_view dir_name);
Result<void> FsyncPath(const std::string& path);
// syncfs(2) of the file system holding `path`: one flush for many small files. On ext4 an
// fsync commits the journal anyway, so for a batch of new files this costs about one fsync.
Result<void> SyncFsPath(const std::string& path);
Result<void> MakeDirsAbs(const std::string& path, mode_t mode = 0755);
// rm -rf that never follows symlinks and never crosses into another mount. Missing is ok.
Result<void> RemoveTreeAbs(const std::string& path);
Result<void> RemoveTreeAt(int dirfd, const std::string& name, std::string_view dir_name);
Result<void> RenameAbs(const std::string& from, const std::string& to);
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Names in a directory, without "." and "..", sorted bytewise. kNotFound if absent.
Result<std::vector<std::string>> ListDir(const std::string& path);
// The same for an open directory (the fd is duplicated, not consumed); `shown` names it in
// errors.
Result<std::vector<std::string>> ListDirAt(int dirfd, std::string_view shown);
// Total bytes of regular files below path (du --apparent-size), not following links.
Result<int64_t> DiskUsage(const std::string& path);
// Copies `in` to its end into a new anonymous file in `dir` (O_TMPFILE; else a file named
// <prefix>XXXXXX unlinked at once) and returns it positioned at 0. Nothing is left in `dir`
// however the process ends. `name` names the input in errors.
Result<UniqueFd> SpoolToAnonymousFile(int in, const std::string& dir, std::string_view prefix,
                                      std::string_view name);
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);

// A temporary directory removed (recursively) in the destructor unless Release()d.
class ScopedTempDir {
 public:
  ScopedTempDir() = default;
  // Creates <parent>/<prefix>XXXXXX.
  static Result<ScopedTempDir> Make(const std::string& parent, std::string_view prefix);
  ScopedTempDir(ScopedTempDir&& o) noexcept : path_(std::exchange(o.path_, "")) {}
  ScopedTempDir& operator=(ScopedTempDir&& o) noexcept;
  ~ScopedTempDir();
  const std::string& path() const { return path_; }
  std::string Release() { return std::exchange(path_, ""); }

 private:
  std::string path_;
};

// flock()-based lock on a file, released in the destructor.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  static Result<FileLock> Acquire(const std::string& path, Mode mode);
  // kBusy if held elsewhere.
  static Result<FileLock> TryAcquire(const std::string& path, Mode mode);
  FileLock() = default;
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  UniqueFd fd_;
};

}  // namespace shale
