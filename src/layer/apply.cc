// Apply: a (compressed) layer tar -> a directory, safe against hostile archives.
//
// Two threads: the calling thread reads, tees, hashes and decompresses into a bounded ring
// of 1 MiB buffers (so ReadFn and ProgressFn run on the caller's thread); a worker thread
// feeds the ring to libarchive's tar reader and extracts. libarchive only parses headers;
// every file system change is made here with *at() calls on a parent fd resolved beneath the
// root with RESOLVE_NO_SYMLINKS, so an entry can never be redirected by a symlink.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include <zstd.h>

#include "layer/internal.h"
#include "layer/layer.h"
#include "util/digest.h"
#include "util/fs.h"

namespace shale::layer {
namespace {

constexpr size_t kBufSize = 1 << 20;
constexpr int kRingSize = 8;
constexpr la_int64_t kMaxId = 0x7fffffff;
constexpr std::string_view kWhiteoutMeta = ".wh..wh.";

// Bounded hand-off of filled buffers from the decoding thread to the extracting thread.
class Ring {
 public:
  Ring() {
    for (int i = 0; i < kRingSize; i++) {
      bufs_.emplace_back(new char[kBufSize]);
      free_.push_back(i);
    }
  }
  char* buf(int i) { return bufs_[i].get(); }

  // Producer side. -1 once the consumer cancelled.
  int AcquireFree() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return cancelled_ || !free_.empty(); });
    if (cancelled_) return -1;
    int i = free_.front();
    free_.pop_front();
    return i;
  }
  void PushFull(int i, size_t len) {
    std::lock_guard l(mu_);
    full_.push_back({i, len});
    cv_.notify_all();
  }
  void Close(bool failed) {
    std::lock_guard l(mu_);
    closed_ = true;
    failed_ = failed;
    cv_.notify_all();
  }
  bool cancelled() {
    std::lock_guard l(mu_);
    return cancelled_;
  }

  // Consumer side. false at end of stream (*failed tells whether the producer failed).
  bool PopFull(int* i, size_t* len, bool* failed) {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return closed_ || !full_.empty(); });
    if (full_.empty()) {
      *failed = failed_;
      return false;
    }
    *i = full_.front().first;
    *len = full_.front().second;
    full_.pop_front();
    return true;
  }
  void Release(int i) {
    std::lock_guard l(mu_);
    free_.push_back(i);
    cv_.notify_all();
  }
  void Cancel() {
    std::lock_guard l(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<char[]>> bufs_;
  std::deque<int> free_;
  std::deque<std::pair<int, size_t>> full_;
  bool closed_ = false, failed_ = false, cancelled_ = false;
};

long Openat2(int dirfd, const char* path, int flags, uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  for (;;) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    if (fd >= 0 || (errno != EINTR && errno != EAGAIN)) return fd;
  }
}
constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

struct DirTime {
  std::string path;
  timespec times[2];
  size_t depth;
};

class Extractor {
 public:
  // split: collect a tar-split (what the stream holds besides file payloads). dry: parse
  // only, extract nothing (the files are already in a diff dir).
  Extractor(const Dir& root, Whiteouts mode, Ring* ring, bool split, bool dry,
            bool any_compression = false)
      : root_(root), mode_(mode), ring_(ring), split_(split), dry_(dry),
        any_compression_(any_compression) {}

  // Runs on the worker thread.
  Result<void> Run() {
    std::unique_ptr<archive, FnDeleter<archive_read_free>> a(archive_read_new());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    archive_read_support_format_empty(a.get());
    if (any_compression_) {
      archive_read_support_filter_bzip2(a.get());
      archive_read_support_filter_xz(a.get());
    }
    if (archive_read_open(a.get(), this, nullptr, &Extractor::ReadCb, nullptr) != ARCHIVE_OK)
      return ArchiveError(a.get(), "open");
    archive_entry* e = nullptr;
    for (;;) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r == ARCHIVE_RETRY) continue;
      if (r < ARCHIVE_WARN) return ArchiveError(a.get(), "read header");
      bool ref = false;
      if (split_) ref = TRY(SplitHeader(a.get(), e));
      if (dry_) {
        if (archive_read_data_skip(a.get()) < ARCHIVE_WARN)
          return ArchiveError(a.get(), "skip data");
      } else {
        TRY(Entry(a.get(), e));
      }
      if (ref) {
        refs_[split_path_] = recs_.size();
        recs_.push_back({true, 0, split_size_, split_path_});
      }
    }
    // Everything after the last entry's payload is raw: end blocks, padding, trailing bytes.
    if (split_ && cur_ >= 0) TRY(EmitRaw(cb1_));
    // A tar with one end block or none: libarchive asked for more input and got the end, so
    // the last buffer went back to the ring and its unclassified bytes (padding, the end
    // block) are all in pending_.
    if (split_ && cur_ < 0 && !pending_.empty()) {
      AppendRaw(pending_.data(), pending_.size());
      done_ += static_cast<int64_t>(pending_.size());
      pending_.clear();
    }
    // Drain what is left (tar end blocks, padding): the hashing side needs all of it.
    Drain();
    if (producer_failed_) return Error(Errc::kIo, "layer input failed");
    TRY(FinishDirTimes());
    return Ok();
  }

  // Stops the producer and releases the buffer in hand; after a failure.
  void Abort() { ring_->Cancel(); }
  int64_t content_size() const { return content_size_; }

  // The tar-split: records in stream order, raw bytes in one arena. Written at the end (a
  // later entry can still turn a file reference into raw bytes).
  Result<void> WriteSplit(int fd, const Digest& diff_id, int64_t size) const;

 private:
  static la_ssize_t ReadCb(archive* a, void* ctx, const void** buf) {
    auto* self = static_cast<Extractor*>(ctx);
    if (self->cur_ >= 0) {
      if (self->split_) self->SaveUnclassified();
      self->ring_->Release(std::exchange(self->cur_, -1));
    }
    int i;
    size_t len;
    bool failed = false;
    if (!self->ring_->PopFull(&i, &len, &failed)) {
      if (failed) {
        self->producer_failed_ = true;
        archive_set_error(a, EIO, "layer input failed");
        return -1;
      }
      return 0;
    }
    self->cur_ = i;
    self->cb0_ = self->cb1_;
    self->cb1_ += static_cast<int64_t>(len);
    *buf = self->ring_->buf(i);
    return static_cast<la_ssize_t>(len);
  }

  void Drain() {
    if (cur_ >= 0) ring_->Release(std::exchange(cur_, -1));
    int i;
    size_t len;
    bool failed = false;
    while (ring_->PopFull(&i, &len, &failed)) {
      if (split_) AppendRaw(ring_->buf(i), len);
      ring_->Release(i);
    }
    if (failed) producer_failed_ = true;
  }


  // --- tar-split ---

  void AppendRaw(const char* p, size_t n) {
    if (n == 0) return;
    // A new record unless the last one is raw and ends where the arena ends (a rescued
    // payload may have been appended since).
    if (recs_.empty() || recs_.back().file ||
        recs_.back().off + static_cast<size_t>(recs_.back().len) != arena_.size())
      recs_.push_back({false, arena_.size(), 0, {}});
    arena_.append(p, n);
    recs_.back().len += static_cast<int64_t>(n);
  }

  // Before the buffer in hand goes back to the ring: keep its bytes nobody classified yet.
  void SaveUnclassified() {
    if (cb1_ <= done_) return;
    int64_t from = std::max(cb0_, done_);
    pending_.append(ring_->buf(cur_) + (from - cb0_), static_cast<size_t>(cb1_ - from));
  }

  // Marks [done_, to) raw. REQUIRES done_ <= to <= cb1_.
  Result<void> EmitRaw(int64_t to) {
    if (to < done_ || to > cb1_)
      return Error(Errc::kInternal, "tar-split: stream offset " + std::to_string(to) +
                                        " outside [" + std::to_string(done_) + ", " +
                                        std::to_string(cb1_) + "]");
    int64_t from_pending = std::min(to, cb0_) - done_;
    if (from_pending > 0) {
      AppendRaw(pending_.data(), static_cast<size_t>(from_pending));
      pending_.erase(0, static_cast<size_t>(from_pending));
      done_ += from_pending;
    }
    if (to > done_) {
      AppendRaw(ring_->buf(cur_) + (done_ - cb0_), static_cast<size_t>(to - done_));
      done_ = to;
    }
    if (done_ >= cb0_) pending_.clear();
    return Ok();
  }

  // After a header: its bytes (and what came before) are raw; returns whether the entry's
  // payload is taken back from the diff dir (then done_ moves past it).
  Result<bool> SplitHeader(archive* a, archive_entry* e) {
    int64_t data_start = archive_filter_bytes(a, 0);
    TRY(EmitRaw(data_start));
    const char* raw = archive_entry_pathname(e);
    if (!raw) return false;
    name_ = raw;
    std::vector<std::string_view> comps;
    std::string nm = raw;
    if (!Clean(nm.c_str(), &comps)) return false;  // Entry() refuses it
    std::string path;
    for (auto c : comps) {
      if (!path.empty()) path += '/';
      path.append(c);
    }
    bool whiteout = !comps.empty() && comps.back().substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix;
    if (dry_) {
      // Nothing is extracted, so nothing can be rescued: a tar that replaces or deletes
      // one of its own files cannot be split this way.
      std::string victim = path;
      if (whiteout) {
        std::string_view leaf = comps.back();
        victim = path.substr(0, path.size() - leaf.size()) +
                 std::string(leaf.substr(kWhiteoutPrefix.size()));
        if (leaf == kOpaqueMarker) victim = path.substr(0, path.size() - leaf.size());
      }
      if (!victim.empty() && Touches(victim))
        return Error(Errc::kUnsupported, "tar-split: entry \"" + name_ +
                                             "\" replaces or deletes an earlier file of the tar");
    }
    bool ref = archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e) &&
               archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
               archive_entry_sparse_count(e) == 0 && !comps.empty() && !whiteout;
    if (!ref) return false;
    split_path_ = std::move(path);
    split_size_ = archive_entry_size(e);
    done_ = data_start + split_size_;
    if (done_ <= cb0_) {
      pending_.erase(0, static_cast<size_t>(split_size_));
    } else {
      pending_.clear();
    }
    return true;
  }

  // Whether `path` or something under it has a payload reference.
  bool Touches(const std::string& path) const {
    if (refs_.count(path)) return true;
    auto it = refs_.lower_bound(path + "/");
    return it != refs_.end() && it->first.compare(0, path.size() + 1, path + "/") == 0;
  }

  // `path` (and what is under it) is about to be removed or replaced: the payloads it holds
  // move into the tar-split as raw bytes, read back from the diff dir.
  Result<void> Rescue(const std::string& path) {
    std::vector<std::string> doomed;
    if (refs_.count(path)) doomed.push_back(path);
    for (auto it = refs_.lower_bound(path + "/");
         it != refs_.end() && it->first.compare(0, path.size() + 1, path + "/") == 0; ++it)
      doomed.push_back(it->first);
    for (const auto& p : doomed) {
      size_t k = refs_[p];
      SplitRec& rec = recs_[k];
      long fd = internal::OpenBeneath(root_.fd(), p, O_RDONLY | O_NOFOLLOW, kBeneath);
      if (fd < 0) return Error::FromErrno(errno, "tar-split: reopen \"" + p + "\"");
      UniqueFd owner(static_cast<int>(fd));
      size_t off = arena_.size();
      arena_.resize(off + static_cast<size_t>(rec.len));
      int64_t got = 0;
      while (got < rec.len) {
        ssize_t n = pread(owner.get(), arena_.data() + off + got, static_cast<size_t>(rec.len - got), got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Error(Errc::kInternal, "tar-split: \"" + p + "\" is shorter than its entry");
        got += n;
      }
      rec.file = false;
      rec.off = off;
      rec.path.clear();
      refs_.erase(p);
    }
    return Ok();
  }

  Error ArchiveError(archive* a, const char* what) {
    if (producer_failed_) return Error(Errc::kIo, "layer input failed");
    const char* msg = archive_error_string(a);
    return Error(Errc::kCorrupt, std::string("layer tar: ") + what + ": " +
                                     (msg ? msg : "unknown libarchive error"));
  }

  Error Refuse(const std::string& name, std::string_view why) {
    return Error(Errc::kInvalidArgument, "layer entry \"" + name + "\": " + std::string(why));
  }

  // Cleans `name` into components (no "", ".", ".."), refusing a climb above the root.
  Result<void> Clean(const char* name, std::vector<std::string_view>* comps,
                     const char* what = "path") {
    comps->clear();
    std::string_view s(name);
    while (!s.empty()) {
      size_t slash = s.find('/');
      std::string_view c = s.substr(0, slash);
      s = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
      if (c.empty() || c == ".") continue;
      if (c == "..") {
        if (comps->empty())
          return Refuse(name_, std::string(what) + " escapes the layer root");
        comps->pop_back();
        continue;
      }
      comps->push_back(c);
    }
    return Ok();
  }

  // Resolves the directory holding the last component of comps, creating missing parents
  // (0755, root-owned). Refuses symlinks and non-directories on the way.
  Result<int> Parent(const std::string& name, const std::vector<std::string_view>& comps) {
    size_t n = comps.size() - 1;
    size_t k = 0;
    while (k < n && k < stack_.size() && stack_[k].name == comps[k]) k++;
    stack_.resize(k);
    int fd = k == 0 ? root_.fd() : stack_[k - 1].fd.get();
    for (size_t i = k; i < n; i++) {
      std::string c(comps[i]);
      long nfd = Openat2(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kBeneath);
      if (nfd < 0 && errno == ENOENT) {
        if (mkdirat(fd, c.c_str(), 0755) != 0 && errno != EEXIST)
          return Error::FromErrno(errno, "layer entry \"" + name + "\": mkdirat " + c);
        nfd = Openat2(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kBeneath);
      }
      if (nfd < 0) {
        if (errno == ELOOP || errno == EXDEV)
          return Refuse(name, "parent \"" + c + "\" is a symlink (refusing to write through it)");
        if (errno == ENOTDIR) {
          struct stat st;
          if (fstatat(fd, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            return Refuse(name, "parent \"" + c + "\" is a symlink (refusing to write through it)");
          return Refuse(name, "parent \"" + c + "\" is not a directory");
        }
        return Error::FromErrno(errno, "layer entry \"" + name + "\": open parent " + c);
      }
      stack_.push_back({std::move(c), UniqueFd(static_cast<int>(nfd))});
      fd = static_cast<int>(nfd);
    }
    return fd;
  }

  // Removes whatever is at pfd/leaf (a tree if it is a directory). Missing is fine.
  Result<void> RemoveAt(int pfd, const char* leaf, const std::string& name) {
    if (split_ && !refs_.empty()) {
      std::string path;
      for (size_t i = 0; i + 1 < comps_.size(); i++) {
        path.append(comps_[i]);
        path += '/';
      }
      TRY(Rescue(path + leaf));
    }
    if (unlinkat(pfd, leaf, 0) == 0 || errno == ENOENT) return Ok();
    if (errno == EISDIR || errno == EPERM) {
      // The cached parents never reach below pfd here (Parent() left exactly the
      // ancestors of the current entry), so no cached fd points into the removed tree.
      return RemoveTreeAt(pfd, leaf, "layer entry \"" + name + "\"");
    }
    return Error::FromErrno(errno, "layer entry \"" + name + "\": unlink");
  }

  Result<void> Entry(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) raw = archive_entry_pathname_utf8(e);
    if (!raw) return Error(Errc::kInvalidArgument, "layer entry with an unreadable name");
    name_ = raw;
    TRY(Clean(raw, &comps_));
    if (comps_.empty()) return Ok();  // the root itself: its metadata is the store's
    TRY(CheckNames());
    // Ids are kept as the kernel's 32-bit uid_t: a larger one would wrap (2^32 is root),
    // and like runc we take only 0..2^31-1.
    if (archive_entry_uid(e) < 0 || archive_entry_uid(e) > kMaxId)
      return Refuse(name_, "owner uid " + std::to_string(archive_entry_uid(e)) +
                               " is outside 0.." + std::to_string(kMaxId));
    if (archive_entry_gid(e) < 0 || archive_entry_gid(e) > kMaxId)
      return Refuse(name_, "owner gid " + std::to_string(archive_entry_gid(e)) +
                               " is outside 0.." + std::to_string(kMaxId));
    int pfd = TRY(Parent(name_, comps_));
    leaf_.assign(comps_.back());
    const char* leaf = leaf_.c_str();

    if (leaf_.size() >= kWhiteoutPrefix.size() &&
        std::string_view(leaf_).substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix)
      return Whiteout(e, pfd);

    if (mode_ == Whiteouts::kPlain) created_.insert(JoinComps());
    mode_t perm = archive_entry_perm(e);
    const char* hardlink = archive_entry_hardlink(e);
    if (hardlink) return Hardlink(hardlink, pfd, leaf);

    mode_t type = archive_entry_filetype(e);
    UniqueFd fd;
    switch (type) {
      case AE_IFDIR: {
        bool fresh = true;
        if (mkdirat(pfd, leaf, 0700) != 0) {
          fresh = false;
          if (errno != EEXIST) return Error::FromErrno(errno, "layer entry \"" + name_ + "\": mkdirat");
          struct stat st;
          if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return Error::FromErrno(errno, "layer entry \"" + name_ + "\": stat");
          if (!S_ISDIR(st.st_mode)) {
            TRY(RemoveAt(pfd, leaf, name_));
            if (mkdirat(pfd, leaf, 0700) != 0)
              return Error::FromErrno(errno, "layer entry \"" + name_ + "\": mkdirat");
          }
        }
        long dfd = Openat2(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kBeneath);
        if (dfd < 0) return Error::FromErrno(errno, "layer entry \"" + name_ + "\": open");
        fd.reset(static_cast<int>(dfd));
        TRY(Meta(e, fd.get(), pfd, leaf, perm, false, fresh));
        DirTime dt;
        dt.path = JoinComps();
        dt.depth = comps_.size();
        Times(e, dt.times);
        dir_times_.push_back(std::move(dt));
        // The next entries are most likely its children: make it the cached parent.
        if (stack_.size() == comps_.size() - 1) {
          stack_.push_back({leaf_, std::move(fd)});
        }
        return Ok();
      }
      case AE_IFREG: {
        int ofd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (ofd < 0 && errno == EEXIST) {
          TRY(RemoveAt(pfd, leaf, name_));
          ofd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (ofd < 0) return Error::FromErrno(errno, "layer entry \"" + name_ + "\": create");
        fd.reset(ofd);
        TRY(Data(a, e, ofd));
        TRY(Meta(e, ofd, pfd, leaf, perm, false));
        timespec t[2];
        Times(e, t);
        if (futimens(ofd, t) != 0)
          return Error::FromErrno(errno, "layer entry \"" + name_ + "\": futimens");
        return Ok();
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) target = archive_entry_symlink_utf8(e);
        if (!target) return Refuse(name_, "symlink without a target");
        if (symlinkat(target, pfd, leaf) != 0) {
          if (errno != EEXIST) return Error::FromErrno(errno, "layer entry \"" + name_ + "\": symlinkat");
          TRY(RemoveAt(pfd, leaf, name_));
          if (symlinkat(target, pfd, leaf) != 0)
            return Error::FromErrno(errno, "layer entry \"" + name_ + "\": symlinkat");
        }
        TRY(Meta(e, -1, pfd, leaf, perm, true));
        return SetTimesAt(e, pfd, leaf);
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (mknodat(pfd, leaf, type | perm, dev) != 0) {
          if (errno != EEXIST) return Error::FromErrno(errno, "layer entry \"" + name_ + "\": mknodat");
          TRY(RemoveAt(pfd, leaf, name_));
          if (mknodat(pfd, leaf, type | perm, dev) != 0)
            return Error::FromErrno(errno, "layer entry \"" + name_ + "\": mknodat");
        }
        TRY(Meta(e, -1, pfd, leaf, perm, false));
        return SetTimesAt(e, pfd, leaf);
      }
      default:
        return Ok();  // sockets and unknown types are not kept in layers
    }
  }

  // Whiteout names mean something only as the leaf: ".wh.NAME" deletes NAME, ".wh..wh..opq"
  // makes its directory opaque. Any other ".wh..wh." name (overlay's reserved space) and a
  // directory named like a whiteout would be taken literally, which no other engine does.
  Result<void> CheckNames() {
    for (size_t i = 0; i + 1 < comps_.size(); i++)
      if (comps_[i].substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix)
        return Refuse(name_, "parent directory \"" + std::string(comps_[i]) +
                                 "\" has a whiteout name (.wh.)");
    std::string_view leaf = comps_.back();
    if (leaf.substr(0, kWhiteoutMeta.size()) == kWhiteoutMeta && leaf != kOpaqueMarker)
      return Refuse(name_, "unknown whiteout name \"" + std::string(leaf) +
                               "\" (only .wh..wh..opq is defined)");
    return Ok();
  }

  std::string JoinComps() const {
    std::string p;
    for (auto c : comps_) {
      if (!p.empty()) p += '/';
      p.append(c);
    }
    return p;
  }

  void Times(archive_entry* e, timespec t[2]) {
    t[1].tv_sec = archive_entry_mtime(e);
    t[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (archive_entry_atime_is_set(e)) {
      t[0].tv_sec = archive_entry_atime(e);
      t[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
      t[0] = t[1];
    }
  }

  Result<void> SetTimesAt(archive_entry* e, int pfd, const char* leaf) {
    timespec t[2];
    Times(e, t);
    if (utimensat(pfd, leaf, t, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "layer entry \"" + name_ + "\": utimensat");
    return Ok();
  }

  // Owner, then mode (chown clears set-id bits), then xattrs. fd < 0: use pfd/leaf.
  Result<void> Meta(archive_entry* e, int fd, int pfd, const char* leaf, mode_t perm,
                    bool is_link, bool fresh = true) {
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    if (fd >= 0) {
      if ((!fresh || uid != 0 || gid != 0) && fchown(fd, uid, gid) != 0)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": fchown");
      if (fchmod(fd, perm) != 0)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": fchmod");
    } else {
      if (fchownat(pfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": fchownat");
      if (!is_link && fchmodat(pfd, leaf, perm, 0) != 0)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": fchmodat");
    }
    if (archive_entry_xattr_reset(e) == 0) return Ok();
    const char* xname;
    const void* value;
    size_t size;
    std::string proc;
    while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
      // overlayfs acts on its own xattrs (redirect, metacopy, origin): an archive must not
      // be able to plant them. Opaque dirs come only from .wh..wh..opq.
      if (strncmp(xname, "trusted.overlay.", 16) == 0) continue;
      int r;
      if (fd >= 0) {
        r = fsetxattr(fd, xname, value, size, 0);
      } else {
        if (proc.empty()) proc = internal::ProcPath(pfd, leaf);
        r = lsetxattr(proc.c_str(), xname, value, size, 0);
      }
      if (r != 0)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": setxattr " + xname);
    }
    return Ok();
  }

  Result<void> Data(archive* a, archive_entry* e, int fd) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    int64_t pos = 0;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ArchiveError(a, ("data of \"" + name_ + "\"").c_str());
      const char* p = static_cast<const char*>(buf);
      if (offset != pos) {  // a hole in a sparse file
        if (lseek(fd, offset, SEEK_SET) < 0)
          return Error::FromErrno(errno, "layer entry \"" + name_ + "\": lseek");
        pos = offset;
      }
      TRY(internal::WriteFull(fd, p, size, "layer entry \"" + name_ + "\""));
      pos += static_cast<int64_t>(size);
      content_size_ += static_cast<int64_t>(size);
    }
    int64_t want = archive_entry_size(e);
    if (archive_entry_size_is_set(e) && want > pos && ftruncate(fd, want) != 0)
      return Error::FromErrno(errno, "layer entry \"" + name_ + "\": ftruncate");
    return Ok();
  }

  Result<void> Hardlink(const char* target, int pfd, const char* leaf) {
    std::vector<std::string_view> tcomps;
    std::string tname = target;
    std::string what = "hardlink target \"" + tname + "\"";
    TRY(Clean(tname.c_str(), &tcomps, what.c_str()));
    if (tcomps.empty()) return Refuse(name_, "hardlink to the layer root");
    std::string tparent;
    for (size_t i = 0; i + 1 < tcomps.size(); i++) {
      if (i) tparent += '/';
      tparent.append(tcomps[i]);
    }
    std::string tleaf(tcomps.back());
    UniqueFd tpfd;
    int tfd = root_.fd();
    if (!tparent.empty()) {
      long r = internal::OpenBeneath(root_.fd(), tparent, O_PATH | O_DIRECTORY, kBeneath);
      if (r < 0) {
        if (errno == ELOOP || errno == EXDEV)
          return Refuse(name_, "hardlink target \"" + tname + "\" goes through a symlink");
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": hardlink target \"" +
                                           tname + "\"");
      }
      tpfd.reset(static_cast<int>(r));
      tfd = tpfd.get();
    }
    if (linkat(tfd, tleaf.c_str(), pfd, leaf, 0) != 0) {
      if (errno != EEXIST)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": link to \"" + tname + "\"");
      struct stat a, b;
      if (fstatat(tfd, tleaf.c_str(), &a, AT_SYMLINK_NOFOLLOW) == 0 &&
          fstatat(pfd, leaf, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
          a.st_dev == b.st_dev)
        return Ok();
      TRY(RemoveAt(pfd, leaf, name_));
      if (linkat(tfd, tleaf.c_str(), pfd, leaf, 0) != 0)
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": link to \"" + tname + "\"");
    }
    return Ok();
  }

  Result<void> Whiteout(archive_entry* e, int pfd) {
    if (leaf_ == kOpaqueMarker) {
      if (mode_ == Whiteouts::kOverlay) {
        // pfd is opened O_RDONLY|O_DIRECTORY (or is the root), so fsetxattr works on it.
        if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) != 0)
          return Error::FromErrno(errno, "layer entry \"" + name_ + "\": set trusted.overlay.opaque");
        return Ok();
      }
      // Flattening: drop the children that came from earlier layers.
      std::string dir;
      for (size_t i = 0; i + 1 < comps_.size(); i++) {
        if (i) dir += '/';
        dir.append(comps_[i]);
      }
      int dfd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
      DIR* d = dfd >= 0 ? fdopendir(dfd) : nullptr;
      if (!d) {
        if (dfd >= 0) close(dfd);
        return Error::FromErrno(errno, "layer entry \"" + name_ + "\": opendir");
      }
      rewinddir(d);
      std::vector<std::string> doomed;
      while (dirent* de = readdir(d)) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        std::string child = dir.empty() ? std::string(de->d_name) : dir + "/" + de->d_name;
        if (!created_.count(child)) doomed.emplace_back(de->d_name);
      }
      closedir(d);
      for (auto& n : doomed) TRY(RemoveAt(pfd, n.c_str(), name_));
      return Ok();
    }
    std::string victim = leaf_.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == "..")
      return Refuse(name_, "whiteout names no entry inside its directory");
    TRY(RemoveAt(pfd, victim.c_str(), name_));
    if (mode_ == Whiteouts::kPlain) return Ok();
    // overlayfs reads a 0:0 character device as "deleted in this layer".
    if (mknodat(pfd, victim.c_str(), S_IFCHR | (archive_entry_perm(e) & 07777), makedev(0, 0)) != 0)
      return Error::FromErrno(errno, "layer entry \"" + name_ + "\": mknodat whiteout");
    if (fchownat(pfd, victim.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "layer entry \"" + name_ + "\": fchownat whiteout");
    return SetTimesAt(e, pfd, victim.c_str());
  }

  // Directory times last, deepest first: creating their children changed them.
  Result<void> FinishDirTimes() {
    stack_.clear();
    std::stable_sort(dir_times_.begin(), dir_times_.end(),
                     [](const DirTime& a, const DirTime& b) { return a.depth > b.depth; });
    for (auto& dt : dir_times_) {
      long fd = internal::OpenBeneath(root_.fd(), dt.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                      kBeneath);
      if (fd < 0) continue;  // removed or replaced later in the layer
      UniqueFd owner(static_cast<int>(fd));
      if (futimens(owner.get(), dt.times) != 0)
        return Error::FromErrno(errno, "layer entry \"" + dt.path + "\": futimens");
    }
    return Ok();
  }

  struct Cached {
    std::string name;
    UniqueFd fd;
  };

  const Dir& root_;
  Whiteouts mode_;
  Ring* ring_;
  int cur_ = -1;
  // Tar-split state. Stream offsets: the buffer in hand holds [cb0_, cb1_); everything
  // before done_ is classified; pending_ holds the bytes [done_, cb0_) of released buffers.
  bool split_ = false, dry_ = false, any_compression_ = false;
  int64_t cb0_ = 0, cb1_ = 0, done_ = 0;
  std::string pending_;
  struct SplitRec {
    bool file;
    size_t off;      // raw: in arena_
    int64_t len;
    std::string path;  // file: as extracted in the diff dir
  };
  std::vector<SplitRec> recs_;
  std::string arena_;
  std::map<std::string, size_t> refs_;  // path -> index in recs_ of its payload reference
  std::string split_path_;
  int64_t split_size_ = 0;
  bool producer_failed_ = false;
  int64_t content_size_ = 0;
  std::string name_, leaf_;
  std::vector<std::string_view> comps_;
  std::vector<Cached> stack_;
  std::vector<DirTime> dir_times_;
  std::unordered_set<std::string> created_;
};


// Tar-split serialisation (docs/layout.md): a zstd frame holding
//   "shale-tar-split/1\n"
//   records: 'R' <varint n> <n raw bytes> | 'F' <varint size> <varint len> <path>
//   'E' <varint tar size> <64 hex digits: sha256 of the tar>
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

Result<void> Extractor::WriteSplit(int fd, const Digest& diff_id, int64_t size) const {
  std::unique_ptr<ZSTD_CCtx, FnDeleter<ZSTD_freeCCtx>> cctx(ZSTD_createCCtx());
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3);
  std::string out(ZSTD_CStreamOutSize(), '\0');
  auto feed = [&](std::string_view in, ZSTD_EndDirective end) -> Result<void> {
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    for (;;) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      size_t r = ZSTD_compressStream2(cctx.get(), &ob, &ib, end);
      if (ZSTD_isError(r))
        return Error(Errc::kInternal, std::string("tar-split: zstd: ") + ZSTD_getErrorName(r));
      TRY(internal::WriteFull(fd, out.data(), ob.pos, "tar-split"));
      if (end == ZSTD_e_end ? r == 0 : ib.pos == ib.size) return Ok();
    }
  };
  // Every byte of the tar is in a record, or save could not give the layer back: refuse it
  // here, at load, rather than keep a layer that cannot be saved.
  int64_t covered = 0;
  for (const auto& r : recs_) covered += r.len;
  if (covered != size)
    return Error(Errc::kUnsupported,
                 "layer tar: its tar-split keeps " + std::to_string(covered) + " of its " +
                     std::to_string(size) +
                     " bytes, so save could not give it back; refusing the layer");
  std::string head(internal::kSplitMagic);
  for (const auto& r : recs_) {
    if (r.file) {
      head.push_back('F');
      PutVarint(&head, static_cast<uint64_t>(r.len));
      PutVarint(&head, r.path.size());
      head += r.path;
    } else {
      head.push_back('R');
      PutVarint(&head, static_cast<uint64_t>(r.len));
      TRY(feed(head, ZSTD_e_continue));
      head.clear();
      TRY(feed(std::string_view(arena_).substr(r.off, static_cast<size_t>(r.len)),
               ZSTD_e_continue));
    }
    if (head.size() > (1 << 16)) {
      TRY(feed(head, ZSTD_e_continue));
      head.clear();
    }
  }
  head.push_back('E');
  PutVarint(&head, static_cast<uint64_t>(size));
  head += diff_id.hex();
  return feed(head, ZSTD_e_end);
}

Result<ApplyResult> ApplyImpl(const Dir& root, const ReadFn& read, const ApplyOptions& opts,
                              bool dry) {
  Ring ring;
  Extractor ex(root, opts.whiteouts, &ring, opts.tar_split_fd >= 0, dry, opts.any_compression);
  Result<void> ex_result;
  std::thread worker([&] {
    ex_result = ex.Run();
    if (!ex_result) ex.Abort();
  });

  ApplyResult res;
  Sha256 raw_hash, tar_hash;
  std::unique_ptr<internal::Decoder> dec;
  // Compressed input: in_len bytes at inbuf, the first ones possibly left over from the
  // previous read.
  std::unique_ptr<char[]> inbuf(new char[2 * kBufSize]);
  size_t in_len = 0;
  bool detected = false;
  int out = -1;       // ring buffer being filled with uncompressed bytes
  size_t out_len = 0;

  auto produce = [&]() -> Result<void> {
    auto push = [&]() -> Result<void> {
      tar_hash.Update(ring.buf(out), out_len);
      res.uncompressed_size += static_cast<int64_t>(out_len);
      ring.PushFull(out, out_len);
      out = -1;
      out_len = 0;
      return Ok();
    };
    auto acquire = [&]() -> Result<void> {
      out = ring.AcquireFree();
      if (out < 0) return Error(Errc::kCancelled, "extraction stopped");
      return Ok();
    };
    auto consume_raw = [&](const char* p, size_t n) {
      if (opts.tee_fd >= 0 && !(opts.tee_compressed_only && res.compression == Compression::kNone))
        return internal::WriteFull(opts.tee_fd, p, n, "layer blob copy");
      return Ok();
    };
    for (;;) {
      if (!detected || !dec) {
        // Plain tar (or not yet known): read straight into a ring buffer.
        TRY(acquire());
        size_t n = 0;
        for (;;) {
          size_t r = TRY(read(ring.buf(out) + n, kBufSize - n));
          if (r == 0) break;
          n += r;
          if (detected || n >= 4) break;
        }
        if (!detected) {
          detected = true;
          res.compression = DetectCompression(std::string_view(ring.buf(out), n));
          if (res.compression != Compression::kNone) {
            dec = internal::MakeDecoder(res.compression);
            memcpy(inbuf.get(), ring.buf(out), n);
            in_len = n;
            ring.Release(out);
            out = -1;
            TRY(consume_raw(inbuf.get(), n));
            raw_hash.Update(inbuf.get(), n);
            res.compressed_size += static_cast<int64_t>(n);
            if (opts.progress) opts.progress(res.compressed_size);
            goto decode;
          }
        }
        if (n == 0) {
          ring.Release(out);
          out = -1;
          return Ok();
        }
        TRY(consume_raw(ring.buf(out), n));
        res.compressed_size += static_cast<int64_t>(n);
        out_len = n;
        TRY(push());
        if (opts.progress) opts.progress(res.compressed_size);
        continue;
      }
      {
        // Input the decoder left unconsumed (a gzip member header split across reads: ISA-L
        // takes a header only whole) stays at the front of `in`.
        size_t keep = in_len;
        size_t n = TRY(read(inbuf.get() + keep, kBufSize));
        in_len = keep + n;
        if (n == 0) {
          // Let the decoder flush whatever it still holds.
          std::string_view sv(inbuf.get(), in_len);
          for (;;) {
            if (out < 0) TRY(acquire());
            size_t produced = 0, before = sv.size();
            TRY(dec->Decode(&sv, ring.buf(out) + out_len, kBufSize - out_len, &produced));
            out_len += produced;
            if (out_len == kBufSize) TRY(push());
            if (produced == 0 && sv.size() == before) break;
          }
          if (out >= 0 && out_len > 0) TRY(push());
          if (out >= 0) {
            ring.Release(out);
            out = -1;
          }
          TRY(dec->Finish().Wrap("layer"));
          if (!sv.empty())
            return Error(Errc::kCorrupt, "layer: " + std::to_string(sv.size()) +
                                             " bytes after the end of the compressed stream "
                                             "that do not start a new member");
          return Ok();
        }
        TRY(consume_raw(inbuf.get() + keep, n));
        raw_hash.Update(inbuf.get() + keep, n);
        res.compressed_size += static_cast<int64_t>(n);
        if (opts.progress) opts.progress(res.compressed_size);
      }
    decode: {
      std::string_view sv(inbuf.get(), in_len);
      for (;;) {
        if (out < 0) TRY(acquire());
        size_t produced = 0, before = sv.size();
        TRY(dec->Decode(&sv, ring.buf(out) + out_len, kBufSize - out_len, &produced));
        out_len += produced;
        if (out_len == kBufSize) {
          TRY(push());
          continue;  // the decoder may hold more output even with no input left
        }
        // Output room left and nothing more came out: the decoder needs more input than
        // sv holds (possibly none). Keep the rest for the next read.
        if (produced == 0 && sv.size() == before) break;
        if (sv.empty() && produced == 0) break;
      }
      // A leftover is at most a member header (a few bytes to a few KB with long names).
      if (sv.size() > kBufSize)
        return Error(Errc::kCorrupt, "layer: decompressor made no progress (corrupt stream)");
      memmove(inbuf.get(), sv.data(), sv.size());
      in_len = sv.size();
    }
    }
  };

  Result<void> prod = produce();
  if (out >= 0) ring.Release(out);
  ring.Close(!prod);
  worker.join();
  // The side that failed first explains it: a producer error (read, corrupt stream) unless it
  // only stopped because extraction was cancelled.
  if (!prod && prod.error().code() != Errc::kCancelled)
    return std::move(prod).error().Wrap("apply layer to " + root.path());
  if (!ex_result) return std::move(ex_result).error().Wrap("apply layer to " + root.path());
  if (!prod) return std::move(prod).error().Wrap("apply layer to " + root.path());

  res.diff_id = tar_hash.Finish();
  res.digest = res.compression == Compression::kNone ? res.diff_id : raw_hash.Finish();
  res.content_size = ex.content_size();
  if (opts.tar_split_fd >= 0)
    TRY(ex.WriteSplit(opts.tar_split_fd, res.diff_id, res.uncompressed_size)
            .Wrap("layer " + res.diff_id.str()));
  if (!dry && opts.sync && syncfs(root.fd()) != 0)
    return Error::FromErrno(errno, "syncfs " + root.path());
  return res;
}

ReadFn FdReader(int fd) {
  return [fd](char* buf, size_t n) -> Result<size_t> {
    for (;;) {
      ssize_t r = ::read(fd, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read layer");
    }
  };
}

}  // namespace

Result<ApplyResult> Apply(const Dir& root, const ReadFn& read, const ApplyOptions& opts) {
  return ApplyImpl(root, read, opts, false);
}

Result<ApplyResult> SplitTar(int tar_fd, int split_fd) {
  posix_fadvise(tar_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  ApplyOptions opts;
  opts.sync = false;
  opts.tar_split_fd = split_fd;
  Dir none;
  auto r = ApplyImpl(none, FdReader(tar_fd), opts, true);
  if (!r) return std::move(r).error().Wrap("tar-split");
  if (r->compression != Compression::kNone)
    return Error(Errc::kInvalidArgument, "tar-split: the tar is compressed");
  return r;
}

Result<ApplyResult> ApplyFd(const Dir& root, int fd, const ApplyOptions& opts) {
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return Apply(root, FdReader(fd), opts);
}

}  // namespace shale::layer
