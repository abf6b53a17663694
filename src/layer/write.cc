// WriteDiff / WriteTree: a directory -> a deterministic layer tar.
//
// Walks with fds only (fstatat/openat on the parent fd, fdopendir), names sorted bytewise in
// each directory, parent before children. Times are whole seconds (as Docker's USTAR headers),
// no atime/ctime, empty uname/gname, so pax extended headers appear only where needed (long
// names, xattrs, large ids) and equal trees give equal bytes.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "layer/internal.h"
#include "layer/layer.h"
#include "util/fs.h"
#include "util/digest.h"

namespace shale::layer {
namespace {

constexpr size_t kBufSize = 1 << 20;

class TreeWriter {
 public:
  TreeWriter(int out_fd, const WriteOptions& opts, bool whiteouts)
      : out_fd_(out_fd), opts_(opts), whiteouts_(whiteouts), buf_(kBufSize) {}
  TreeWriter(const TreeWriter&) = delete;
  TreeWriter& operator=(const TreeWriter&) = delete;
  // archive_write_free() closes an archive still open (an error in Run left it so), and
  // closing flushes the buffered block through WriteCb. A failed write must not end with a
  // trailer that makes the partial tar look whole, and WriteCb must not touch members, so
  // it is told to drop the bytes, and the archive goes first, while every member is alive.
  ~TreeWriter() {
    abandoned_ = true;
    a_.reset();
  }

  // mirror: an empty dir that gets a copy of everything packed, from the same reads.
  Result<WriteResult> Run(const Dir& root, const Dir* mirror = nullptr) {
    mirror_ = mirror;
    mirror_root_ = mirror ? mirror->fd() : -1;
    a_.reset(archive_write_new());
    archive_write_set_format_pax_restricted(a_.get());
    // Only the SCHILY.xattr form (what Docker and GNU tar read); not LIBARCHIVE.xattr too.
    archive_write_set_format_option(a_.get(), "pax", "xattrheader", "SCHILY");
    archive_write_set_bytes_per_block(a_.get(), 64 * 1024);
    archive_write_set_bytes_in_last_block(a_.get(), 1);  // end after the two zero blocks
    if (archive_write_open(a_.get(), this, nullptr, &TreeWriter::WriteCb, nullptr) != ARCHIVE_OK)
      return ArchiveError("open");
    entry_.reset(archive_entry_new());
    std::string prefix;
    TRY(Walk(root.fd(), mirror_ ? mirror_->fd() : -1, root.path(), &prefix));
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return ArchiveError("close");
    if (!write_error_.has_value()) {
      WriteResult r;
      r.diff_id = hash_.Finish();
      r.size = size_;
      return r;
    }
    return *write_error_;
  }

 private:
  static la_ssize_t WriteCb(archive*, void* ctx, const void* buf, size_t n) {
    auto* self = static_cast<TreeWriter*>(ctx);
    if (self->abandoned_) return static_cast<la_ssize_t>(n);
    auto r = internal::WriteFull(self->out_fd_, static_cast<const char*>(buf), n, "layer tar");
    if (!r) {
      self->write_error_ = std::move(r).error();
      return -1;
    }
    self->hash_.Update(buf, n);
    self->size_ += static_cast<int64_t>(n);
    return static_cast<la_ssize_t>(n);
  }

  Error ArchiveError(const std::string& what) {
    if (write_error_) return *write_error_;
    const char* msg = archive_error_string(a_.get());
    return Error(Errc::kIo, "write layer tar: " + what + ": " + (msg ? msg : "libarchive error"));
  }

  int64_t Mtime(const struct stat& st) const {
    int64_t t = st.st_mtim.tv_sec;
    if (opts_.clamp_mtime && t > *opts_.clamp_mtime) t = *opts_.clamp_mtime;
    return t;
  }

  void Basic(const std::string& path, const struct stat& st) {
    archive_entry_clear(entry_.get());
    archive_entry_set_pathname(entry_.get(), path.c_str());
    archive_entry_set_uid(entry_.get(), st.st_uid);
    archive_entry_set_gid(entry_.get(), st.st_gid);
    archive_entry_set_mtime(entry_.get(), Mtime(st), 0);
  }

  // Adds the entry's xattrs (not overlay's own) to the header; returns all of them, for the
  // mirror copy.
  Result<std::vector<internal::Xattr>> AddXattrs(int dirfd, const char* name,
                                                 const std::string& shown) {
    auto xs = TRY(internal::ListXattrs(dirfd, name, shown));
    for (auto& x : xs) {
      if (x.name.rfind("trusted.overlay.", 0) == 0) continue;  // overlay's own bookkeeping
      archive_entry_xattr_add_entry(entry_.get(), x.name.c_str(), x.value.data(), x.value.size());
    }
    return xs;
  }

  // Owner, mode, xattrs and times of the mirror copy mdirfd/name, from what was packed.
  Result<void> MirrorMeta(int mdirfd, const char* name, const struct stat& st,
                          const std::vector<internal::Xattr>& xs, const std::string& shown) {
    if (fchownat(mdirfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "chown copy of " + shown);
    if (!S_ISLNK(st.st_mode) && fchmodat(mdirfd, name, st.st_mode & 07777, 0) != 0)
      return Error::FromErrno(errno, "chmod copy of " + shown);
    if (!xs.empty()) {
      std::string p = internal::ProcPath(mdirfd, name);
      for (auto& x : xs)
        if (lsetxattr(p.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
          return Error::FromErrno(errno, "setxattr " + x.name + " on copy of " + shown);
    }
    timespec t[2] = {st.st_atim, st.st_mtim};
    if (utimensat(mdirfd, name, t, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "utimensat copy of " + shown);
    return Ok();
  }

  static Error Changed(const std::string& shown, std::string_view how) {
    return Error(Errc::kBusy, shown + " " + std::string(how) +
                                  " while it was packed (pause the container, or retry)");
  }

  Result<void> Header(const std::string& shown) {
    int r = archive_write_header(a_.get(), entry_.get());
    if (r < ARCHIVE_WARN) return ArchiveError("header of " + shown);
    return Ok();
  }

  // A zero-length mode-0 regular file: an OCI whiteout or the opaque marker.
  Result<void> Marker(const std::string& path, const struct stat& st) {
    Basic(path, st);
    archive_entry_set_filetype(entry_.get(), AE_IFREG);
    archive_entry_set_perm(entry_.get(), 0);
    archive_entry_set_size(entry_.get(), 0);
    return Header(path);
  }

  // mdirfd: the mirror directory matching dirfd, or -1 (no copy).
  Result<void> Walk(int dirfd, int mdirfd, const std::string& shown_dir, std::string* prefix) {
    std::vector<std::string> names = TRY(ListDirAt(dirfd, shown_dir));
    size_t base = prefix->size();
    const bool mirror = mdirfd >= 0;
    for (const auto& name : names) {
      prefix->resize(base);
      prefix->append(name);
      const std::string& path = *prefix;
      const char* c = name.c_str();
      std::string shown = shown_dir + "/" + name;
      struct stat st;
      if (fstatat(dirfd, c, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        // Removed since the listing (a live container): as if removed before the walk.
        if (errno == ENOENT) continue;
        return Error::FromErrno(errno, "stat " + shown);
      }

      if (whiteouts_ && internal::IsWhiteoutDevice(st)) {
        std::string wpath = path.substr(0, base) + std::string(kWhiteoutPrefix) + name;
        TRY(Marker(wpath, st));
        if (mirror) {
          if (mknodat(mdirfd, c, st.st_mode, st.st_rdev) != 0)
            return Error::FromErrno(errno, "mknodat copy of " + shown);
          TRY(MirrorMeta(mdirfd, c, st, {}, shown));
        }
        continue;
      }
      if (S_ISSOCK(st.st_mode)) continue;  // tar cannot carry sockets

      // Directories and files are opened before anything is packed, and packed (and copied)
      // as the open fd says, so that header, payload and copy come from one look at them.
      UniqueFd fd;
      if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
        int flags = S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK;
        int ofd = openat(dirfd, c, flags | O_NOFOLLOW | O_CLOEXEC);
        if (ofd < 0 && errno == ENOENT) continue;
        if (ofd < 0 && (errno == ELOOP || errno == ENOTDIR)) return Changed(shown, "changed type");
        if (ofd < 0) return Error::FromErrno(errno, "open " + shown);
        fd.reset(ofd);
        mode_t was = st.st_mode & S_IFMT;
        if (fstat(ofd, &st) != 0) return Error::FromErrno(errno, "stat " + shown);
        if ((st.st_mode & S_IFMT) != was) return Changed(shown, "changed type");
      }

      Basic(S_ISDIR(st.st_mode) ? path + "/" : path, st);
      archive_entry_set_mode(entry_.get(), st.st_mode);
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, path);
        if (!inserted) {
          archive_entry_set_hardlink(entry_.get(), it->second.c_str());
          archive_entry_set_size(entry_.get(), 0);
          TRY(Header(shown));
          if (mirror && linkat(mirror_root_, it->second.c_str(), mdirfd, c, 0) != 0)
            return Error::FromErrno(errno, "link copy of " + shown);
          continue;
        }
      }
      auto listed = AddXattrs(dirfd, c, shown);
      if (!listed && listed.error().sys_errno() == ENOENT) {
        // Removed between the stat and the xattr listing (a live container renaming in a
        // loop): nothing of it is written yet, so as if removed before the walk.
        archive_entry_clear(entry_.get());
        continue;
      }
      std::vector<internal::Xattr> xs = TRY(std::move(listed));
      if (S_ISDIR(st.st_mode)) {
        TRY(Header(shown));
        bool opaque = false;
        for (const auto& x : xs)
          if (x.name == "trusted.overlay.opaque" && x.value == "y") opaque = true;
        if (whiteouts_ && opaque) TRY(Marker(path + "/" + std::string(kOpaqueMarker), st));
        UniqueFd mchild;
        if (mirror) {
          if (mkdirat(mdirfd, c, 0700) != 0)
            return Error::FromErrno(errno, "mkdirat copy of " + shown);
          int m = openat(mdirfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (m < 0) return Error::FromErrno(errno, "open copy of " + shown);
          mchild.reset(m);
        }
        prefix->push_back('/');
        TRY(Walk(fd.get(), mchild ? mchild.get() : -1, shown, prefix));
        // After the children, which changed its times.
        if (mirror) TRY(MirrorMeta(mdirfd, c, st, xs, shown));
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(PATH_MAX, '\0');
        ssize_t n = readlinkat(dirfd, c, target.data(), target.size());
        if (n < 0 && errno == ENOENT) {
          archive_entry_clear(entry_.get());
          continue;
        }
        if (n < 0 && errno == EINVAL) return Changed(shown, "changed type");
        if (n < 0) return Error::FromErrno(errno, "readlink " + shown);
        target.resize(static_cast<size_t>(n));
        archive_entry_set_symlink(entry_.get(), target.c_str());
        TRY(Header(shown));
        if (mirror) {
          if (symlinkat(target.c_str(), mdirfd, c) != 0)
            return Error::FromErrno(errno, "symlink copy of " + shown);
          TRY(MirrorMeta(mdirfd, c, st, xs, shown));
        }
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        if (!S_ISFIFO(st.st_mode)) {
          archive_entry_set_rdevmajor(entry_.get(), major(st.st_rdev));
          archive_entry_set_rdevminor(entry_.get(), minor(st.st_rdev));
        }
        TRY(Header(shown));
        if (mirror) {
          if (mknodat(mdirfd, c, st.st_mode, st.st_rdev) != 0)
            return Error::FromErrno(errno, "mknodat copy of " + shown);
          TRY(MirrorMeta(mdirfd, c, st, xs, shown));
        }
      } else if (S_ISREG(st.st_mode)) {
        archive_entry_set_size(entry_.get(), st.st_size);
        TRY(Header(shown));
        UniqueFd copy;
        if (mirror) {
          int m = openat(mdirfd, c, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
          if (m < 0) return Error::FromErrno(errno, "create copy of " + shown);
          copy.reset(m);
        }
        // The same bytes go into the tar and into the copy, whatever the file does meanwhile.
        int64_t left = st.st_size;
        while (left > 0) {
          ssize_t n = ::read(fd.get(), buf_.data(), std::min<int64_t>(left, kBufSize));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return Error::FromErrno(errno, "read " + shown);
          if (n == 0) break;  // shrank while we read: libarchive pads the rest with zeros
          if (archive_write_data(a_.get(), buf_.data(), static_cast<size_t>(n)) < 0)
            return ArchiveError("data of " + shown);
          if (copy)
            TRY(internal::WriteFull(copy.get(), buf_.data(), static_cast<size_t>(n),
                                    "copy of " + shown));
          left -= n;
        }
        if (copy) {
          // The zeros libarchive padded a shrunk file with.
          if (left > 0 && ftruncate(copy.get(), st.st_size) != 0)
            return Error::FromErrno(errno, "ftruncate copy of " + shown);
          copy.reset();
          TRY(MirrorMeta(mdirfd, c, st, xs, shown));
        }
      }
    }
    prefix->resize(base);
    return Ok();
  }

  // WriteCb uses the members below a_; a_ is declared after them so that, whatever the
  // destructor does, they are destroyed after it.
  int out_fd_;
  const WriteOptions& opts_;
  bool whiteouts_;
  const Dir* mirror_ = nullptr;
  int mirror_root_ = -1;
  std::vector<char> buf_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  Sha256 hash_;
  int64_t size_ = 0;
  std::optional<Error> write_error_;
  bool abandoned_ = false;
  std::unique_ptr<archive_entry, FnDeleter<archive_entry_free>> entry_;
  std::unique_ptr<archive, FnDeleter<archive_write_free>> a_;
};

}  // namespace

Result<WriteResult> WriteDiff(const Dir& upper, int out_fd, const WriteOptions& opts) {
  TreeWriter w(out_fd, opts, /*whiteouts=*/true);
  return w.Run(upper).Wrap("write diff of " + upper.path());
}

Result<WriteResult> WriteDiffAndCopy(const Dir& upper, int out_fd, const Dir& copy,
                                     const WriteOptions& opts) {
  TreeWriter w(out_fd, opts, /*whiteouts=*/true);
  return w.Run(upper, &copy).Wrap("write diff of " + upper.path());
}

Result<WriteResult> WriteTree(const Dir& root, int out_fd, const WriteOptions& opts) {
  TreeWriter w(out_fd, opts, /*whiteouts=*/false);
  return w.Run(root).Wrap("write tree of " + root.path());
}

}  // namespace shale::layer
