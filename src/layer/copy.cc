// CopyDiff (diff dir -> empty dir, everything kept) and Changes (docker diff).
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "layer/internal.h"
#include "layer/layer.h"
#include "util/fs.h"

namespace shale::layer {
namespace {


Result<UniqueFd> OpenChildDir(int dirfd, const char* name, const std::string& shown) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + shown);
  return UniqueFd(fd);
}

class Copier {
 public:
  Result<void> Copy(int from, int to, const std::string& shown, const std::string& rel) {
    auto names = TRY(ListDirAt(from, shown));
    for (const auto& n : names) {
      std::string s = shown + "/" + n;
      std::string r = rel.empty() ? n : rel + "/" + n;
      struct stat st;
      if (fstatat(from, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::FromErrno(errno, "stat " + s);
      const char* c = n.c_str();
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, r);
        if (!inserted) {
          if (linkat(to_root_, it->second.c_str(), to, c, 0) != 0)
            return Error::FromErrno(errno, "link " + s);
          continue;
        }
      }
      if (S_ISDIR(st.st_mode)) {
        if (mkdirat(to, c, 0700) != 0) return Error::FromErrno(errno, "mkdirat copy of " + s);
        UniqueFd sf = TRY(OpenChildDir(from, c, s));
        UniqueFd df = TRY(OpenChildDir(to, c, "copy of " + s));
        TRY(Copy(sf.get(), df.get(), s, r));
      } else if (S_ISREG(st.st_mode)) {
        int sfd = openat(from, c, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0) return Error::FromErrno(errno, "open " + s);
        UniqueFd sf(sfd);
        int dfd = openat(to, c, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (dfd < 0) return Error::FromErrno(errno, "create copy of " + s);
        UniqueFd df(dfd);
        TRY(CopyData(sf.get(), df.get(), st.st_size, s));
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(PATH_MAX, '\0');
        ssize_t len = readlinkat(from, c, target.data(), target.size());
        if (len < 0) return Error::FromErrno(errno, "readlink " + s);
        target.resize(static_cast<size_t>(len));
        if (symlinkat(target.c_str(), to, c) != 0) return Error::FromErrno(errno, "symlink " + s);
      } else {
        if (mknodat(to, c, st.st_mode, st.st_rdev) != 0)
          return Error::FromErrno(errno, "mknodat copy of " + s);
      }
      TRY(Meta(from, to, c, st, s));
    }
    return Ok();
  }

  // Owner, mode, xattrs, times of from/name onto to/name.
  Result<void> Meta(int from, int to, const char* name, const struct stat& st,
                    const std::string& s) {
    if (fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "chown copy of " + s);
    if (!S_ISLNK(st.st_mode) && fchmodat(to, name, st.st_mode & 07777, 0) != 0)
      return Error::FromErrno(errno, "chmod copy of " + s);
    auto xs = TRY(internal::ListXattrs(from, name, s));
    if (!xs.empty()) {
      std::string p = internal::ProcPath(to, name);
      for (auto& x : xs)
        if (lsetxattr(p.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
          return Error::FromErrno(errno, "setxattr " + x.name + " on copy of " + s);
    }
    timespec t[2] = {st.st_atim, st.st_mtim};
    if (utimensat(to, name, t, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "utimensat copy of " + s);
    return Ok();
  }

  int to_root_ = -1;

 private:
  Result<void> CopyData(int in, int out, off_t size, const std::string& s) {
    off_t left = size;
    bool fallback = false;
    while (left > 0 && !fallback) {
      ssize_t n = copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
          fallback = true;
          break;
        }
        return Error::FromErrno(errno, "copy_file_range " + s);
      }
      if (n == 0) break;
      left -= n;
    }
    if (fallback) {
      std::vector<char> buf(1 << 20);
      for (;;) {
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Error::FromErrno(errno, "read " + s);
        if (n == 0) break;
        TRY(internal::WriteFull(out, buf.data(), static_cast<size_t>(n), "copy of " + s));
      }
    }
    return Ok();
  }

  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

// A lower dir as overlay sees it: its entry for `rel`, hidden by whiteouts/opaque dirs.
enum class LowerHas { kYes, kDeleted, kNo, kHidden };

LowerHas Lookup(int lower, const std::vector<std::string>& comps) {
  int cur = lower;
  UniqueFd owner;
  for (size_t i = 0; i < comps.size(); i++) {
    struct stat st;
    if (fstatat(cur, comps[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return LowerHas::kNo;
    if (internal::IsWhiteoutDevice(st)) return LowerHas::kDeleted;
    if (i + 1 == comps.size()) return LowerHas::kYes;
    if (!S_ISDIR(st.st_mode)) return LowerHas::kDeleted;  // a file hides the rest of the path
    int fd = openat(cur, comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return LowerHas::kNo;
    owner.reset(fd);
    cur = fd;
    char v[2];
    if (fgetxattr(cur, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y' &&
        i + 2 <= comps.size()) {
      // Everything below an opaque dir in this lower comes from this lower only.
      struct stat cst;
      bool here = fstatat(cur, comps[i + 1].c_str(), &cst, AT_SYMLINK_NOFOLLOW) == 0;
      if (!here) return LowerHas::kHidden;
    }
  }
  return LowerHas::kYes;
}

class ChangeWalker {
 public:
  explicit ChangeWalker(std::vector<UniqueFd> lowers) : lowers_(std::move(lowers)) {}

  bool InLowers(const std::vector<std::string>& comps) {
    for (auto& l : lowers_) {
      LowerHas h = Lookup(l.get(), comps);
      if (h == LowerHas::kYes) return true;
      if (h == LowerHas::kDeleted || h == LowerHas::kHidden) return false;
    }
    return false;
  }

  // Names visible in the merged lowers under comps (for opaque dirs' deletions).
  std::set<std::string> LowerChildren(const std::vector<std::string>& comps) {
    std::set<std::string> out, deleted;
    for (auto& l : lowers_) {
      LowerHas h = comps.empty() ? LowerHas::kYes : Lookup(l.get(), comps);
      if (h == LowerHas::kDeleted || h == LowerHas::kHidden) break;
      if (h == LowerHas::kNo) continue;
      std::string rel;
      for (auto& c : comps) rel += (rel.empty() ? "" : "/") + c;
      long fd = -1;
      open_how how{};
      how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
      how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
      fd = syscall(SYS_openat2, l.get(), rel.empty() ? "." : rel.c_str(), &how, sizeof(how));
      if (fd < 0) break;  // not a dir: hides everything below
      UniqueFd d(static_cast<int>(fd));
      auto names = ListDirAt(d.get(), rel);
      if (!names) break;
      for (auto& n : *names) {
        struct stat st;
        if (fstatat(d.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (deleted.count(n)) continue;
        if (internal::IsWhiteoutDevice(st)) {
          deleted.insert(n);
          continue;
        }
        out.insert(n);
      }
      char v[2];
      if (fgetxattr(d.get(), "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y') break;
    }
    return out;
  }

  Result<void> Walk(int dirfd, const std::string& shown, std::vector<std::string>* comps,
                    bool all_added) {
    auto names = TRY(ListDirAt(dirfd, shown));
    for (const auto& n : names) {
      comps->push_back(n);
      std::string path;
      for (auto& c : *comps) path += "/" + c;
      struct stat st;
      if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return Error::FromErrno(errno, "stat " + shown + "/" + n);
      if (internal::IsWhiteoutDevice(st)) {
        out_.push_back({'D', path});
        comps->pop_back();
        continue;
      }
      bool added = all_added || !InLowers(*comps);
      out_.push_back({added ? 'A' : 'C', path});
      if (S_ISDIR(st.st_mode)) {
        UniqueFd child = TRY(OpenChildDir(dirfd, n.c_str(), shown + "/" + n));
        if (!added) {
          char v[2];
          if (fgetxattr(child.get(), "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y') {
            for (const auto& ln : LowerChildren(*comps)) {
              struct stat cst;
              if (fstatat(child.get(), ln.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0)
                out_.push_back({'D', path + "/" + ln});
            }
          }
        }
        TRY(Walk(child.get(), shown + "/" + n, comps, added));
      }
      comps->pop_back();
    }
    return Ok();
  }

  std::vector<Change> out_;

 private:
  std::vector<UniqueFd> lowers_;
};

}  // namespace

Result<void> CopyDiff(const Dir& from, const Dir& to) {
  Copier c;
  c.to_root_ = to.fd();
  auto r = c.Copy(from.fd(), to.fd(), from.path(), "");
  if (!r) return std::move(r).error().Wrap("copy diff " + from.path() + " -> " + to.path());
  // The root's own metadata (opaque marker, owner, mode, times) last.
  struct stat st;
  if (fstat(from.fd(), &st) != 0) return Error::FromErrno(errno, "stat " + from.path());
  if (fchown(to.fd(), st.st_uid, st.st_gid) != 0 || fchmod(to.fd(), st.st_mode & 07777) != 0)
    return Error::FromErrno(errno, "chown/chmod " + to.path());
  auto xs = TRY(internal::ListXattrs(from.fd(), ".", from.path()));
  for (auto& x : xs)
    if (fsetxattr(to.fd(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0)
      return Error::FromErrno(errno, "setxattr " + x.name + " on " + to.path());
  timespec t[2] = {st.st_atim, st.st_mtim};
  if (futimens(to.fd(), t) != 0) return Error::FromErrno(errno, "futimens " + to.path());
  return Ok();
}

Result<std::vector<Change>> Changes(const Dir& upper, const std::vector<std::string>& lowers) {
  std::vector<UniqueFd> fds;
  for (const auto& l : lowers) {
    int fd = ::open(l.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::FromErrno(errno, "open lower dir " + l);
    fds.emplace_back(fd);
  }
  ChangeWalker w(std::move(fds));
  std::vector<std::string> comps;
  TRY(w.Walk(upper.fd(), upper.path(), &comps, false).Wrap("changes of " + upper.path()));
  std::sort(w.out_.begin(), w.out_.end(),
            [](const Change& a, const Change& b) { return a.path < b.path; });
  return std::move(w.out_);
}

}  // namespace shale::layer
