// Dir: a directory handle that every relative path is resolved *inside* of.
//
// Untrusted paths (from layer archives, images, specs) are never joined to strings and
// opened; they go through Dir, which uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
// so that "..", absolute names and symlinks cannot leave the root (crun's safe_openat).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <string>
#include <string_view>

#include "util/error.h"
#include "util/fd.h"

namespace shale {

class Dir {
 public:
  Dir() = default;
  Dir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  // Opens a trusted absolute (or cwd-relative) path. kNotFound if absent.
  static Result<Dir> Open(const std::string& path);
  // mkdir -p of a trusted path, then Open.
  static Result<Dir> Create(const std::string& path, mode_t mode = 0755);

  // Opens `rel` resolved inside this directory. Symlinks are followed but stay inside.
  Result<UniqueFd> OpenAt(std::string_view rel, int flags, mode_t mode = 0) const;
  // Like OpenAt, but never follows a symlink in the last component (O_NOFOLLOW semantics
  // for the leaf; parents still resolved in root).
  Result<Dir> OpenDir(std::string_view rel) const;
  // mkdir -p inside the root; existing directories are fine.
  Result<Dir> MakeDirs(std::string_view rel, mode_t mode = 0755) const;
  // Removes `rel` and everything below it, never following symlinks or crossing mounts.
  // Missing is success.
  Result<void> RemoveTree(std::string_view rel) const;
  Result<bool> Exists(std::string_view rel) const;
  Result<std::string> ReadFile(std::string_view rel) const;
  // ReadFile for a file the tree's owner controls (an image's /etc/passwd): opened inside
  // the root without blocking, refused unless a regular file of at most `max` bytes.
  Result<std::string> ReadRegularFile(std::string_view rel, size_t max) const;
  // Atomic: temp file in the same directory, fsync, renameat, fsync directory.
  Result<void> WriteFileAtomic(std::string_view rel, std::string_view data,
                               mode_t mode = 0644) const;

  Dir Dup() const;
  int fd() const { return fd_.get(); }
  // The path this Dir was opened with, for messages and for trusted absolute uses.
  const std::string& path() const { return path_; }
  std::string Join(std::string_view rel) const;
  explicit operator bool() const { return bool(fd_); }

 private:
  UniqueFd fd_;
  std::string path_;
};

// openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (falls back to a userspace walk
// with O_NOFOLLOW component by component where the kernel lacks openat2).
Result<UniqueFd> OpenInRoot(int root_fd, std::string_view rel, int flags, mode_t mode,
                            std::string_view root_name);

// Splits "a/b/c" into parent "a/b" and leaf "c" after dropping leading "/" and "./".
// Returns false if the leaf is empty, "." or "..".
bool SplitParentLeaf(std::string_view rel, std::string* parent, std::string* leaf);

}  // namespace shale
