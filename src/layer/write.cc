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

  Result<WriteResult> Run(const Dir& root) {
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
    TRY(Walk(root.fd(), root.path(), &prefix));
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

  Result<void> AddXattrs(int dirfd, const char* name, const std::string& shown) {
    auto xs = TRY(internal::ListXattrs(dirfd, name, shown));
    for (auto& x : xs) {
      if (x.name.rfind("trusted.overlay.", 0) == 0) continue;  // overlay's own bookkeeping
      archive_entry_xattr_add_entry(entry_.get(), x.name.c_str(), x.value.data(), x.value.size());
    }
    return Ok();
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

  Result<void> Walk(int dirfd, const std::string& shown_dir, std::string* prefix) {
    std::vector<std::string> names = TRY(ListDirAt(dirfd, shown_dir));
    size_t base = prefix->size();
    for (const auto& name : names) {
      prefix->resize(base);
      prefix->append(name);
      const std::string& path = *prefix;
      std::string shown = shown_dir + "/" + name;
      struct stat st;
      if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::FromErrno(errno, "stat " + shown);

      if (whiteouts_ && internal::IsWhiteoutDevice(st)) {
        std::string wpath = path.substr(0, base) + std::string(kWhiteoutPrefix) + name;
        TRY(Marker(wpath, st));
        continue;
      }
      if (S_ISSOCK(st.st_mode)) continue;  // tar cannot carry sockets

      Basic(S_ISDIR(st.st_mode) ? path + "/" : path, st);
      archive_entry_set_mode(entry_.get(), st.st_mode);
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, path);
        if (!inserted) {
          archive_entry_set_hardlink(entry_.get(), it->second.c_str());
          archive_entry_set_size(entry_.get(), 0);
          TRY(Header(shown));
          continue;
        }
      }
      TRY(AddXattrs(dirfd, name.c_str(), shown));
      if (S_ISDIR(st.st_mode)) {
        TRY(Header(shown));
        int cfd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) return Error::FromErrno(errno, "open " + shown);
        UniqueFd child(cfd);
        if (whiteouts_) {
          char v[4];
          ssize_t n = fgetxattr(cfd, "trusted.overlay.opaque", v, sizeof(v));
          if (n == 1 && v[0] == 'y') TRY(Marker(path + "/" + std::string(kOpaqueMarker), st));
        }
        prefix->push_back('/');
        TRY(Walk(cfd, shown, prefix));
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(PATH_MAX, '\0');
        ssize_t n = readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) return Error::FromErrno(errno, "readlink " + shown);
        target.resize(static_cast<size_t>(n));
        archive_entry_set_symlink(entry_.get(), target.c_str());
        TRY(Header(shown));
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        archive_entry_set_rdevmajor(entry_.get(), major(st.st_rdev));
        archive_entry_set_rdevminor(entry_.get(), minor(st.st_rdev));
        TRY(Header(shown));
      } else if (S_ISFIFO(st.st_mode)) {
        TRY(Header(shown));
      } else if (S_ISREG(st.st_mode)) {
        archive_entry_set_size(entry_.get(), st.st_size);
        int ffd = openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (ffd < 0) return Error::FromErrno(errno, "open " + shown);
        UniqueFd f(ffd);
        TRY(Header(shown));
        int64_t left = st.st_size;
        while (left > 0) {
          ssize_t n = ::read(ffd, buf_.data(), std::min<int64_t>(left, kBufSize));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return Error::FromErrno(errno, "read " + shown);
          if (n == 0) break;  // shrank while we read: libarchive pads the rest with zeros
          if (archive_write_data(a_.get(), buf_.data(), static_cast<size_t>(n)) < 0)
            return ArchiveError("data of " + shown);
          left -= n;
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

Result<WriteResult> WriteTree(const Dir& root, int out_fd, const WriteOptions& opts) {
  TreeWriter w(out_fd, opts, /*whiteouts=*/false);
  return w.Run(root).Wrap("write tree of " + root.path());
}

}  // namespace shale::layer
