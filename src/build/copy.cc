// COPY/ADD: source resolution in a rooted tree, the content digest, the copy.
#include "build/copy.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstring>

#include "layer/layer.h"
#include "util/digest.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::build {
namespace {

std::string BaseName(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  size_t s = p.rfind('/');
  return std::string(s == std::string_view::npos ? p : p.substr(s + 1));
}

std::string ParentOf(std::string_view p) {
  size_t s = p.rfind('/');
  return s == std::string_view::npos ? "" : std::string(p.substr(0, s));
}

std::string JoinRel(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "/" + std::string(b);
}

// The real path an open fd names (its /proc/self/fd link).
Result<std::string> FdPath(int fd, std::string_view shown) {
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  char buf[4096];
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return Error::FromErrno(errno, "readlink " + std::string(shown));
  return std::string(buf, n);
}

// The path an fd names, relative to the tree whose real path is `root_real` ("" = the root).
Result<std::string> RelativeOf(int fd, const std::string& root_real, std::string_view shown) {
  std::string real = TRY(FdPath(fd, shown));
  if (real == root_real) return std::string();
  if (root_real == "/") return real.substr(1);
  if (real.compare(0, root_real.size() + 1, root_real + "/") != 0)
    return Error(Errc::kInvalidArgument,
                 "Forbidden path outside the build context: " + std::string(shown));
  return real.substr(root_real.size() + 1);
}

// A tar ADD extracts, as docker's: a tar, plain or compressed with gzip, bzip2, xz (or zstd,
// which layers have), recognised by libarchive reading its first header; anything else, a
// compressed file that is not a tar included, is copied as it is.
bool IsArchive(const Dir& root, const std::string& rel) {
  auto fd = root.OpenAt(rel, O_RDONLY | O_NOFOLLOW);
  if (!fd) return false;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_format_empty(a.get());
  for (auto filter : {archive_read_support_filter_gzip, archive_read_support_filter_bzip2,
                      archive_read_support_filter_xz, archive_read_support_filter_zstd})
    (void)filter(a.get());
  if (archive_read_open_fd(a.get(), fd->get(), 1 << 16) != ARCHIVE_OK) return false;
  archive_entry* e = nullptr;
  int r = archive_read_next_header(a.get(), &e);
  // An empty file is "empty format" to libarchive, not a tar: docker copies it.
  if (r == ARCHIVE_EOF) return archive_format(a.get()) != ARCHIVE_FORMAT_EMPTY;
  return r == ARCHIVE_OK || r == ARCHIVE_WARN;
}

Error NotFound(std::string_view src) {
  return Error(Errc::kNotFound,
               "COPY failed: file not found in build context or excluded by .dockerignore: "
               "stat " + std::string(src) + ": file does not exist");
}

struct StatAt {
  struct stat st {};
  std::string link;
};

Result<StatAt> StatItem(const Dir& root, const std::string& rel) {
  StatAt s;
  if (rel.empty()) {
    if (fstat(root.fd(), &s.st) != 0) return Error::FromErrno(errno, "stat " + root.path());
    return s;
  }
  std::string parent = ParentOf(rel), leaf = BaseName(rel);
  Dir pd = parent.empty() ? root.Dup() : TRY(root.OpenDir(parent));
  if (fstatat(pd.fd(), leaf.c_str(), &s.st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::FromErrno(errno, "stat " + rel);
  if (S_ISLNK(s.st.st_mode)) {
    char buf[4096];
    ssize_t n = readlinkat(pd.fd(), leaf.c_str(), buf, sizeof buf);
    if (n < 0) return Error::FromErrno(errno, "readlink " + rel);
    s.link.assign(buf, n);
  }
  return s;
}

Result<void> CopyBytes(int in, int out, std::string_view shown) {
  for (;;) {
    ssize_t n = copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n == 0) return Ok();
    if (n > 0) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) break;
    return Error::FromErrno(errno, "copy " + std::string(shown));
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n == 0) return Ok();
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read " + std::string(shown));
    }
    TRY(WriteAll(out, std::string_view(buf, n), shown));
  }
}

// mkdir -p of `rel` inside `rootfs`; directories it creates get `mode` and `owner`.
Result<void> EnsureDir(const Dir& rootfs, const std::string& rel, mode_t mode,
                       const CopyOwner& owner) {
  std::string prefix;
  for (const std::string& part : Split(rel, '/')) {
    if (part.empty() || part == ".") continue;
    prefix = JoinRel(prefix, part);
    if (TRY(rootfs.Exists(prefix))) continue;
    Dir d = TRY(rootfs.MakeDirs(prefix, mode));
    if (fchown(d.fd(), owner.uid, owner.gid) != 0)
      return Error::FromErrno(errno, "chown /" + prefix);
    if (fchmod(d.fd(), mode) != 0) return Error::FromErrno(errno, "chmod /" + prefix);
  }
  return Ok();
}

// Writes one item at `to` (relative to rootfs). Existing non-directories are replaced.
Result<void> PutItem(const Dir& tree, const std::string& from, const Dir& rootfs,
                     const std::string& to, const CopyOwner& owner,
                     std::optional<mode_t> chmod) {
  StatAt s = TRY(StatItem(tree, from));
  std::string shown = "/" + to;
  if (to.empty() || S_ISDIR(s.st.st_mode)) {
    mode_t mode = chmod ? *chmod : (s.st.st_mode & 07777);
    if (!to.empty() && !TRY(rootfs.Exists(to))) {
      TRY(EnsureDir(rootfs, ParentOf(to), 0755, owner));
      Dir d = TRY(rootfs.MakeDirs(to, mode));
      if (fchown(d.fd(), owner.uid, owner.gid) != 0) return Error::FromErrno(errno, "chown " + shown);
      if (fchmod(d.fd(), mode) != 0) return Error::FromErrno(errno, "chmod " + shown);
    } else {
      Dir d = to.empty() ? rootfs.Dup() : TRY(rootfs.OpenDir(to));
      if (fchown(d.fd(), owner.uid, owner.gid) != 0) return Error::FromErrno(errno, "chown " + shown);
      if (fchmod(d.fd(), mode) != 0) return Error::FromErrno(errno, "chmod " + shown);
    }
    return Ok();
  }
  std::string parent = ParentOf(to), leaf = BaseName(to);
  TRY(EnsureDir(rootfs, parent, 0755, owner));
  Dir pd = parent.empty() ? rootfs.Dup() : TRY(rootfs.OpenDir(parent));
  struct stat old;
  if (fstatat(pd.fd(), leaf.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(old.st_mode))
      return Error(Errc::kInvalidArgument, "cannot overwrite directory " + shown + " with a file");
    if (unlinkat(pd.fd(), leaf.c_str(), 0) != 0) return Error::FromErrno(errno, "unlink " + shown);
  }
  struct timespec times[2] = {s.st.st_atim, s.st.st_mtim};
  if (S_ISLNK(s.st.st_mode)) {
    if (symlinkat(s.link.c_str(), pd.fd(), leaf.c_str()) != 0)
      return Error::FromErrno(errno, "symlink " + shown);
    if (fchownat(pd.fd(), leaf.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0)
      return Error::FromErrno(errno, "chown " + shown);
    (void)utimensat(pd.fd(), leaf.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return Ok();
  }
  if (!S_ISREG(s.st.st_mode))
    return Error(Errc::kInvalidArgument, "COPY: " + from + " is not a file, directory or symlink");
  UniqueFd in = TRY(tree.OpenAt(from, O_RDONLY | O_NOFOLLOW));
  mode_t mode = chmod ? *chmod : (s.st.st_mode & 07777);
  int fd = openat(pd.fd(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Error::FromErrno(errno, "create " + shown);
  UniqueFd out(fd);
  TRY(CopyBytes(in.get(), out.get(), shown));
  if (fchown(out.get(), owner.uid, owner.gid) != 0) return Error::FromErrno(errno, "chown " + shown);
  // After chown: chown clears set-id bits.
  if (fchmod(out.get(), mode) != 0) return Error::FromErrno(errno, "chmod " + shown);
  (void)futimens(out.get(), times);
  return Ok();
}

}  // namespace

std::string NormalizeDest(std::string_view dest, std::string_view workdir) {
  bool slash = !dest.empty() && dest.back() == '/';
  std::string out;
  if (!dest.empty() && dest[0] == '/') {
    out = CleanPath(dest);
  } else {
    out = CleanPath("/" + std::string(workdir) + "/" + std::string(dest));
  }
  if (slash && out != "/") out += "/";
  return out;
}

std::string FileTarget(std::string_view dest, std::string_view name, bool dest_is_dir) {
  if (!dest.empty() && dest.back() == '/') return std::string(dest) + std::string(name);
  if (dest_is_dir) return (dest == "/" ? "" : std::string(dest)) + "/" + std::string(name);
  return std::string(dest);
}

bool HasWildcard(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

SourceTree::SourceTree(Dir root, std::vector<ContextEntry> entries)
    : root_(std::move(root)), entries_(std::move(entries)) {
  sorted_.resize(entries_.size());
  for (size_t i = 0; i < sorted_.size(); ++i) sorted_[i] = i;
  std::sort(sorted_.begin(), sorted_.end(),
            [&](size_t a, size_t b) { return entries_[a].path < entries_[b].path; });
}

const ContextEntry* SourceTree::Find(std::string_view rel) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), rel,
                             [&](size_t i, std::string_view r) { return entries_[i].path < r; });
  if (it == sorted_.end() || entries_[*it].path != rel) return nullptr;
  return &entries_[*it];
}

std::vector<const ContextEntry*> SourceTree::Below(std::string_view dir) const {
  std::vector<const ContextEntry*> out;
  if (dir.empty()) {
    for (const auto& e : entries_) out.push_back(&e);
    return out;
  }
  std::string prefix = std::string(dir) + "/";
  // Listing order is kept: parents come before their children.
  std::vector<size_t> hits;
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), prefix,
                             [&](size_t i, const std::string& p) { return entries_[i].path < p; });
  for (; it != sorted_.end() && StartsWith(entries_[*it].path, prefix); ++it) hits.push_back(*it);
  std::sort(hits.begin(), hits.end());
  for (size_t i : hits) out.push_back(&entries_[i]);
  return out;
}

Result<CopyPlan> PlanCopy(const SourceTree& tree, const std::vector<std::string>& srcs,
                          const std::string& dest, bool dest_is_dir, bool add) {
  CopyPlan plan;
  std::string root_real = TRY(FdPath(tree.root().fd(), tree.root().path()));

  struct Found {
    std::string path;     // resolved, in the tree
    std::string name;     // the name it is copied under (a file source)
    bool is_dir;
  };
  std::vector<Found> found;
  for (const std::string& src : srcs) {
    std::string rel = CleanPath(src);
    while (StartsWith(rel, "/")) rel.erase(0, 1);
    if (rel == "." || rel.empty()) rel = "";
    if (rel == ".." || StartsWith(rel, "../"))
      return Error(Errc::kInvalidArgument, "Forbidden path outside the build context: " + src);
    if (HasWildcard(rel)) {
      bool any = false;
      for (const ContextEntry& e : tree.entries()) {
        if (fnmatch(rel.c_str(), e.path.c_str(), FNM_PATHNAME) != 0) continue;
        found.push_back({e.path, BaseName(e.path), e.type == EntryType::kDir});
        any = true;
      }
      if (!any) return Error(Errc::kNotFound, "COPY failed: no source files were specified");
      continue;
    }
    if (rel.empty()) {
      found.push_back({"", "", true});
      continue;
    }
    // Symlinks on the way are followed, inside the tree only (RESOLVE_IN_ROOT).
    auto fd = tree.root().OpenAt(rel, O_PATH | O_CLOEXEC);
    if (!fd) {
      if (fd.error().code() == Errc::kNotFound) return NotFound(src);
      return std::move(fd).error();
    }
    std::string resolved = TRY(RelativeOf(fd->get(), root_real, src));
    struct stat st;
    if (fstat(fd->get(), &st) != 0) return Error::FromErrno(errno, "stat " + src);
    if (!resolved.empty() && !tree.Find(resolved)) return NotFound(src);
    found.push_back({resolved, BaseName(rel), S_ISDIR(st.st_mode)});
  }
  if (found.size() > 1 && (dest.empty() || dest.back() != '/'))
    return Error(Errc::kInvalidArgument,
                 "When using COPY with more than one source file, the destination must be a "
                 "directory and end with a /");
  for (const Found& f : found) {
    CopyPlan::Source s;
    s.path = f.path;
    s.is_dir = f.is_dir;
    std::string dir_dest = dest.size() > 1 && dest.back() == '/' ? dest.substr(0, dest.size() - 1) : dest;
    if (f.is_dir) {
      s.target = dir_dest;
      s.items.push_back({tree.Find(f.path), f.path, ""});
      size_t cut = f.path.empty() ? 0 : f.path.size() + 1;
      for (const ContextEntry* e : tree.Below(f.path)) s.items.push_back({e, e->path, e->path.substr(cut)});
    } else if (add && IsArchive(tree.root(), f.path)) {
      s.extract = true;
      s.target = dir_dest;
      s.items.push_back({tree.Find(f.path), f.path, ""});
    } else {
      s.target = FileTarget(dest, f.name, dest_is_dir);
      s.items.push_back({tree.Find(f.path), f.path, ""});
    }
    plan.sources.push_back(std::move(s));
  }
  plan.kind = plan.sources.size() > 1 ? "multi" : plan.sources[0].is_dir ? "dir" : "file";
  return plan;
}

Result<std::string> HashPlan(const SourceTree& tree, const CopyPlan& plan) {
  Sha256 h;
  char buf[65536];
  for (const auto& s : plan.sources) {
    // The source, not its target: the target also depends on the container (an existing
    // directory), and the destination as written is in the history line the key holds.
    h.Update(s.extract ? "X" : "S");
    h.Update(s.path);
    h.Update("\0", 1);
    for (const CopyItem& it : s.items) {
      // A listed file is opened once: its fstat and its bytes come from the same fd.
      UniqueFd in;
      StatAt st;
      if (it.entry && it.entry->type == EntryType::kFile) {
        in = TRY(tree.root().OpenAt(it.from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (fstat(in.get(), &st.st) != 0) return Error::FromErrno(errno, "stat " + it.from);
      } else {
        st = TRY(StatItem(tree.root(), it.from));
      }
      bool reg = S_ISREG(st.st.st_mode);
      std::string head = it.to + '\0' + std::to_string(st.st.st_mode) + ' ' +
                         std::to_string(st.st.st_uid) + ' ' + std::to_string(st.st.st_gid) + ' ' +
                         std::to_string(reg ? st.st.st_size : 0) + ' ' + st.link + '\0';
      h.Update(head);
      if (!reg) continue;
      if (!in) in = TRY(tree.root().OpenAt(it.from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      // The size read is the size hashed: a file that grows meanwhile is cut at its stat.
      off_t left = st.st.st_size;
      while (left > 0) {
        ssize_t n = read(in.get(), buf, std::min<off_t>(left, sizeof buf));
        if (n == 0) return Error(Errc::kBusy, it.from + " shrank while it was read");
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error::FromErrno(errno, "read " + it.from);
        }
        h.Update(buf, n);
        left -= n;
      }
    }
  }
  return h.Finish().hex();
}

Result<void> CopyPlanInto(const SourceTree& tree, const CopyPlan& plan, const Dir& rootfs,
                          const CopyOwner& owner, std::optional<mode_t> chmod) {
  for (const auto& s : plan.sources) {
    std::string target = s.target;
    while (StartsWith(target, "/")) target.erase(0, 1);
    if (s.extract) {
      TRY(EnsureDir(rootfs, target, 0755, owner));
      Dir into = target.empty() ? rootfs.Dup() : TRY(rootfs.OpenDir(target));
      UniqueFd in = TRY(tree.root().OpenAt(s.path, O_RDONLY | O_NOFOLLOW));
      layer::ApplyOptions ao;
      ao.whiteouts = layer::Whiteouts::kPlain;
      ao.sync = false;  // the commit syncs the layer
      ao.any_compression = true;
      TRY(layer::ApplyFd(into, in.get(), ao).Wrap("ADD " + s.path));
      continue;
    }
    if (s.is_dir) {
      // The destination directory, if new, is 0755 and owned by the --chown owner, as
      // docker makes it (not the source directory's mode); an existing one is kept.
      TRY(EnsureDir(rootfs, target, 0755, owner));
      for (size_t i = 1; i < s.items.size(); ++i)
        TRY(PutItem(tree.root(), s.items[i].from, rootfs, JoinRel(target, s.items[i].to), owner, chmod));
      continue;
    }
    TRY(PutItem(tree.root(), s.path, rootfs, target, owner, chmod));
  }
  return Ok();
}

}  // namespace shale::build
