#include "graphdriver/overlay2.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>
#include <utility>

#include "graphdriver/graph_driver.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::graph {
namespace overlay2 {

std::string NewShortName() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += n;
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (5 - bits)) & 31];
  return out;  // 128 bits -> 26 characters (Docker trims the "=" padding the same way)
}

bool ValidLayerId(std::string_view id) {
  return !id.empty() && id.size() <= 255 && id.find('/') == std::string_view::npos &&
         id.front() != '.' && id != "l" && id.find('\0') == std::string_view::npos;
}

}  // namespace overlay2

namespace {

using overlay2::ValidLayerId;
constexpr long kOverlayfsMagic = 0x794c7630;

// A small file of a layer being built, inside its temporary directory. Image layers are made
// durable by one syncfs of the whole directory before it is renamed into place (Create); a
// container's init and read-write layers are not synced, as Docker does not sync them: the
// whole layer directory appears at once by rename, and a power loss may lose the container.
Result<void> WriteLayerFile(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return Error::FromErrno(errno, "open " + path);
  return WriteAll(fd.get(), data, path);
}

// What the driver knows of one layer from its files.
struct LayerFiles {
  std::string link;                // short name
  std::vector<std::string> lower;  // "l/XXX", top first; empty for a base layer
  bool committed = false;
};

class Overlay2 : public GraphDriver {
 public:
  Overlay2(std::string root, std::vector<std::string> options)
      : root_(std::move(root)), options_(std::move(options)) {}

  std::string_view Name() const override { return "overlay2"; }
  std::string Root() const override { return root_; }
  Result<void> RemoveStaging() override;

  Result<void> Create(std::string_view id, std::string_view parent, LayerKind kind) override;
  bool Exists(std::string_view id) const override {
    return ValidLayerId(id) && IsDirectory(Path(id)) && PathExists(Path(id) + "/link");
  }
  Result<Dir> OpenDiffDir(std::string_view id) const override {
    TRY(CheckExists(id));
    return Dir::Open(DiffPath(id));
  }
  std::string DiffPath(std::string_view id) const override { return Path(id) + "/diff"; }
  Result<sys::OverlaySpec> MountSpecFor(std::string_view id) const override;
  Result<std::string> Mount(std::string_view id) override { return Mount(id, MountOptions{}); }
  Result<std::string> Mount(std::string_view id, const MountOptions& opts) override;
  Result<void> Unmount(std::string_view id) override;
  Result<LayerInfo> Stat(std::string_view id) const override;
  Result<void> Remove(std::string_view id) override;
  Result<void> RemoveStack(const std::vector<std::string>& ids) override;
  Result<std::map<std::string, std::string>> Metadata(std::string_view id) const override;

 private:
  // Remove's checks, the rename out of sight and the short link: the path of the renamed
  // dir, whose contents are left to delete ("" when the layer did not exist).
  // `scan_for_children`: false when the caller knows its only child is already gone.
  Result<std::string> TakeAway(std::string_view id, bool scan_for_children = true);
  // Whether `child`'s `lower` starts with `parent`'s short link.
  bool IsChildOf(std::string_view child, std::string_view parent) const;
  std::string Path(std::string_view id) const { return root_ + "/" + std::string(id); }
  Result<void> CheckExists(std::string_view id) const {
    if (!ValidLayerId(id))
      return Error(Errc::kInvalidArgument,
                   "overlay2: invalid layer id \"" + std::string(id) + "\"");
    if (!Exists(id))
      return Error(Errc::kNotFound, "overlay2: layer " + std::string(id) + " does not exist");
    return Ok();
  }
  Result<LayerFiles> ReadLayer(std::string_view id) const;
  // "l/XXX" -> the layer id its link points at ("../<id>/diff").
  Result<std::string> IdOfShortLink(std::string_view short_lower, std::string_view of) const;

  std::string root_;
  std::vector<std::string> options_;
};

Result<LayerFiles> Overlay2::ReadLayer(std::string_view id) const {
  TRY(CheckExists(id));
  LayerFiles f;
  std::string dir = Path(id);
  f.link = std::string(Trim(TRY(ReadFile(dir + "/link"))));
  if (f.link.empty() || f.link.find('/') != std::string::npos)
    return Error(Errc::kCorrupt, "overlay2: " + dir + "/link is empty or invalid");
  if (PathExists(dir + "/lower")) {
    std::string lower(Trim(TRY(ReadFile(dir + "/lower"))));
    if (!lower.empty()) f.lower = Split(lower, ':');
    for (const auto& l : f.lower) {
      if (!StartsWith(l, "l/") || l.size() <= 2 || l.find('/', 2) != std::string::npos)
        return Error(Errc::kCorrupt,
                     "overlay2: " + dir + "/lower has an invalid entry \"" + l + "\"");
    }
  }
  f.committed = PathExists(dir + "/committed");
  return f;
}

Result<std::string> Overlay2::IdOfShortLink(std::string_view short_lower,
                                            std::string_view of) const {
  std::string link = root_ + "/" + std::string(short_lower);
  char buf[4096];
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  auto corrupt = [&](std::string why) {
    return Error(Errc::kCorrupt, "overlay2: layer " + std::string(of) + ": short link " + link +
                                     " " + why +
                                     "; the store is damaged: remove the layer and "
                                     "import its image again");
  };
  if (n < 0) return corrupt(std::string("is unreadable: ") + strerror(errno));
  std::string target(buf, n);
  // Docker writes "../<id>/diff".
  if (!StartsWith(target, "../") || !EndsWith(target, "/diff")) return corrupt("-> " + target);
  std::string pid = target.substr(3, target.size() - 3 - 5);
  if (!ValidLayerId(pid)) return corrupt("-> " + target);
  return pid;
}

Result<void> Overlay2::Create(std::string_view id, std::string_view parent, LayerKind kind) {
  const std::string sid(id), sparent(parent);
  const std::string what = "overlay2: create layer " + sid;
  if (!ValidLayerId(id)) return Error(Errc::kInvalidArgument, what + ": invalid layer id");
  if (PathExists(Path(id))) return Error(Errc::kAlreadyExists, what + ": it already exists");
  std::string lower;
  if (!parent.empty()) {
    if (!ValidLayerId(parent) || !Exists(parent))
      return Error(Errc::kNotFound, what + ": parent layer " + sparent + " does not exist");
    LayerFiles pf = TRY(ReadLayer(parent).Wrap(what));
    lower = "l/" + pf.link;
    for (const auto& l : pf.lower) lower += ":" + l;
  }
  const bool durable = kind == LayerKind::kImage;

  // Build under a temporary name; nothing under <id> or l/ is visible until complete.
  ScopedTempDir tmp = TRY(ScopedTempDir::Make(root_, ".tmp-" + sid.substr(0, 64) + "-").Wrap(what));
  const std::string& t = tmp.path();
  if (chmod(t.c_str(), 0701) != 0) return Error::FromErrno(errno, what + ": chmod " + t);
  if (mkdir((t + "/diff").c_str(), 0755) != 0)
    return Error::FromErrno(errno, what + ": mkdir " + t + "/diff");
  std::string link;
  for (int i = 0;; i++) {
    link = overlay2::NewShortName();
    if (!PathExists(root_ + "/l/" + link)) break;
    if (i > 16) return Error(Errc::kInternal, what + ": no free short name in " + root_ + "/l");
  }
  TRY(WriteLayerFile(t + "/link", link, 0644).Wrap(what));
  if (!parent.empty()) {
    TRY(WriteLayerFile(t + "/lower", lower, 0644).Wrap(what));
    if (mkdir((t + "/work").c_str(), 0700) != 0)
      return Error::FromErrno(errno, what + ": mkdir " + t + "/work");
  }
  // Image and init layers are read-only once made: Docker's `committed` marks exactly that.
  if (kind != LayerKind::kContainer)
    TRY(WriteLayerFile(t + "/committed", "", 0600).Wrap(what));
  // One flush for the files and directories above (instead of an fsync for each).
  if (durable) TRY(SyncFsPath(t).Wrap(what));

  // Docker marks the parent once a child is made on it. Done before the child appears so
  // that a failure here leaves no child behind (a stray `committed` on the parent is harmless).
  if (!parent.empty() && !PathExists(Path(parent) + "/committed"))
    TRY(WriteFileAtomic(Path(parent) + "/committed", "", 0600).Wrap(what));

  // The short link goes first: a crash then leaves at worst a dangling link, never a layer
  // without its link.
  std::string link_path = root_ + "/l/" + link;
  if (symlink(("../" + sid + "/diff").c_str(), link_path.c_str()) != 0) {
    if (errno != ENOENT) return Error::FromErrno(errno, what + ": symlink " + link_path);
    // l/ went missing (NewOverlay2 makes it): make it again.
    TRY(MakeDirsAbs(root_ + "/l", 0700).Wrap(what));
    if (symlink(("../" + sid + "/diff").c_str(), link_path.c_str()) != 0)
      return Error::FromErrno(errno, what + ": symlink " + link_path);
  }
  if (renameat2(AT_FDCWD, t.c_str(), AT_FDCWD, Path(id).c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    unlink(link_path.c_str());
    if (err == EEXIST) return Error(Errc::kAlreadyExists, what + ": it already exists");
    return Error::FromErrno(err, what + ": rename " + t + " -> " + Path(id));
  }
  tmp.Release();
  // The rename and the short link, durable together.
  if (durable) (void)SyncFsPath(root_);
  return Ok();
}

Result<void> Overlay2::RemoveStaging() {
  for (const auto& name : TRY(ListDir(root_))) {
    if (!StartsWith(name, ".tmp-") && !StartsWith(name, ".rm-")) continue;
    TRY(RemoveTreeAbs(root_ + "/" + name).Wrap("overlay2: remove leftover " + name));
  }
  return Ok();
}

Result<sys::OverlaySpec> Overlay2::MountSpecFor(std::string_view id) const {
  const std::string what = "overlay2: layer " + std::string(id);
  LayerFiles f = TRY(ReadLayer(id));
  sys::OverlaySpec spec;
  spec.short_base = root_;
  spec.extra_options = options_;
  if (f.committed) {  // read-only view: this layer's own diff on top of its parents
    spec.lowers.push_back(DiffPath(id));
    spec.short_lowers.push_back("l/" + f.link);
  } else {
    spec.upper = DiffPath(id);
    if (!f.lower.empty()) spec.work = Path(id) + "/work";
  }
  for (const auto& l : f.lower) {
    std::string pid = TRY(IdOfShortLink(l, id));
    spec.lowers.push_back(DiffPath(pid));
    spec.short_lowers.push_back(l);
  }
  return spec;
}

Result<std::string> Overlay2::Mount(std::string_view id, const MountOptions& opts) {
  const std::string what = "mount layer " + std::string(id);
  sys::OverlaySpec spec = TRY(MountSpecFor(id).Wrap(what));
  std::string merged = Path(id) + "/merged";
  if (sys::IsMountPoint(merged)) return merged;
  // A volatile mount leaves work/work/incompat/volatile behind, and overlayfs refuses to
  // mount that work dir again until it is gone. Cleared before merged/ exists, so a failure
  // here leaves nothing new.
  std::string incompat = spec.work.empty() ? "" : spec.work + "/work/incompat";
  if (!incompat.empty() && PathExists(incompat + "/volatile"))
    TRY(RemoveTreeAbs(incompat).Wrap(what));
  if (mkdir(merged.c_str(), 0700) != 0 && errno != EEXIST)
    return Error::FromErrno(errno, what + ": mkdir " + merged);
  Result<void> r;
  if (spec.upper.empty() && spec.lowers.size() == 1) {
    // A base layer alone: overlay needs two lowers without an upper, so bind it read-only.
    r = sys::Mount({"bind", spec.lowers[0], merged, {"bind", "ro"}});
  } else if (spec.lowers.empty()) {
    // A writable layer with no parent (a container on an empty image): its diff is the view.
    r = sys::Mount({"bind", spec.upper, merged, {"bind"}});
  } else {
    if (opts.volatile_upper && !spec.upper.empty()) {
      sys::OverlaySpec v = spec;
      v.extra_options.push_back("volatile");
      r = sys::MountOverlay(v, merged);
      if (!r) LogDebug(what + ": without \"volatile\": " + r.error().message());
    }
    if (!opts.volatile_upper || spec.upper.empty() || !r) r = sys::MountOverlay(spec, merged);
  }
  if (!r) {
    rmdir(merged.c_str());
    return std::move(r).error().Wrap(what);
  }
  return merged;
}

Result<void> Overlay2::Unmount(std::string_view id) {
  if (!ValidLayerId(id))
    return Error(Errc::kInvalidArgument, "overlay2: invalid layer id \"" + std::string(id) + "\"");
  std::string merged = Path(id) + "/merged";
  // Docker detaches (MNT_DETACH) so that a straggling process cannot wedge the driver.
  for (int i = 0; i < 16 && sys::IsMountPoint(merged); i++)
    TRY(sys::Unmount(merged, /*lazy=*/true).Wrap("unmount layer " + std::string(id)));
  if (rmdir(merged.c_str()) != 0 && errno != ENOENT)
    return Error::FromErrno(errno, "unmount layer " + std::string(id) + ": rmdir " + merged);
  return Ok();
}

Result<LayerInfo> Overlay2::Stat(std::string_view id) const {
  LayerFiles f = TRY(ReadLayer(id));
  LayerInfo info;
  info.id = std::string(id);
  for (const auto& l : f.lower) info.chain.push_back(TRY(IdOfShortLink(l, id)));
  if (!info.chain.empty()) info.parent = info.chain.front();
  return info;
}

bool Overlay2::IsChildOf(std::string_view child, std::string_view parent) const {
  auto link = ReadFile(Path(parent) + "/link");
  auto lower = ReadFile(Path(child) + "/lower");
  if (!link || !lower) return false;
  // A child's `lower` starts with its parent's short link.
  std::string_view first = Trim(*lower);
  return first.substr(0, first.find(':')) == "l/" + std::string(Trim(*link));
}

Result<std::string> Overlay2::TakeAway(std::string_view id, bool scan_for_children) {
  const std::string sid(id);
  const std::string what = "overlay2: remove layer " + sid;
  if (!ValidLayerId(id)) return Error(Errc::kInvalidArgument, what + ": invalid layer id");
  if (!PathExists(Path(id))) return std::string();
  if (sys::IsMountPoint(Path(id) + "/merged"))
    return Error(Errc::kBusy, what + ": it is mounted at " + Path(id) +
                                  "/merged; unmount it (stop its container) first");
  std::string link;
  if (auto l = ReadFile(Path(id) + "/link")) link = std::string(Trim(*l));
  // Create marks a parent `committed` before its child appears, so a layer without the mark
  // (a container's read-write layer) has no children and needs no scan.
  if (scan_for_children && !link.empty() && PathExists(Path(id) + "/committed")) {
    auto names = TRY(ListDir(root_).Wrap(what));
    for (const auto& n : names)
      if (n != sid && ValidLayerId(n) && IsChildOf(n, id))
        return Error(Errc::kBusy, what + ": layer " + n + " is built on it; remove that first");
  }
  // Rename away first so the layer vanishes at once; the slow delete happens after.
  std::string doomed = root_ + "/.rm-" + sid.substr(0, 64) + "-" + overlay2::NewShortName();
  TRY(RenameAbs(Path(id), doomed).Wrap(what));
  if (!link.empty()) {
    std::string lp = root_ + "/l/" + link;
    if (unlink(lp.c_str()) != 0 && errno != ENOENT)
      return Error::FromErrno(errno, what + ": unlink " + lp);
  }
  return doomed;
}

Result<void> Overlay2::Remove(std::string_view id) {
  std::string doomed = TRY(TakeAway(id));
  if (doomed.empty()) return Ok();
  return RemoveTreeAbs(doomed).Wrap("overlay2: remove layer " + std::string(id));
}

Result<void> Overlay2::RemoveStack(const std::vector<std::string>& ids) {
  // A layer whose child is the one before it needs no scan of the store: the caller says it
  // is the only child, and it goes first. Read before anything moves.
  std::vector<bool> child_goes_first(ids.size(), false);
  for (size_t i = 1; i < ids.size(); ++i) child_goes_first[i] = IsChildOf(ids[i - 1], ids[i]);
  // Each layer is renamed away, top first; then the renamed trees are deleted at once, one
  // thread each (a container's init and read-write layers: ~1 ms of unlinks each, in the
  // kernel).
  std::vector<std::pair<std::string, std::string>> doomed;  // layer id, renamed dir
  Result<void> taken = Ok();
  for (size_t i = 0; i < ids.size(); ++i) {
    auto d = TakeAway(ids[i], !child_goes_first[i]);
    if (!d) {
      taken = std::move(d).error();
      break;
    }
    if (!d->empty()) doomed.emplace_back(ids[i], std::move(*d));
  }
  std::vector<Result<void>> removed(doomed.size(), Ok());
  std::vector<std::thread> workers;
  for (size_t i = 1; i < doomed.size(); ++i) {
    try {
      workers.emplace_back([&, i] { removed[i] = RemoveTreeAbs(doomed[i].second); });
    } catch (const std::system_error&) {  // no thread to be had (a pids limit): inline
      removed[i] = RemoveTreeAbs(doomed[i].second);
    }
  }
  if (!doomed.empty()) removed[0] = RemoveTreeAbs(doomed[0].second);
  for (std::thread& w : workers) w.join();
  TRY(std::move(taken));
  for (size_t i = 0; i < doomed.size(); ++i)
    TRY(std::move(removed[i]).Wrap("overlay2: remove layer " + doomed[i].first));
  return Ok();
}

Result<std::map<std::string, std::string>> Overlay2::Metadata(std::string_view id) const {
  LayerFiles f = TRY(ReadLayer(id));
  std::map<std::string, std::string> m;
  m["UpperDir"] = DiffPath(id);
  m["MergedDir"] = Path(id) + "/merged";
  m["WorkDir"] = Path(id) + "/work";
  std::vector<std::string> lowers;
  for (const auto& l : f.lower) lowers.push_back(DiffPath(TRY(IdOfShortLink(l, id))));
  if (!lowers.empty()) m["LowerDir"] = Join(lowers, ":");
  return m;
}

bool OverlayAvailable() {
  if (auto fs = ReadFile("/proc/filesystems"))
    if (fs->find("\toverlay\n") != std::string::npos) return true;
  return PathExists("/sys/module/overlay");
}

}  // namespace

Result<std::unique_ptr<GraphDriver>> NewOverlay2(const std::string& root) {
  const std::string what = "overlay2 driver at " + root;
  if (!OverlayAvailable())
    return Error(Errc::kUnsupported,
                 what + ": the kernel has no overlay file system (try `modprobe overlay`)");
  // 0700, and made so on every open: overlay's upperdir=/lowerdir= paths are published in
  // /proc/*/mountinfo, and another user must not reach a setuid file of a layer through
  // them (CVE-2021-41091; Docker made overlay2/ 0710 for the same reason).
  TRY(MakeDirsAbs(root, 0700).Wrap(what));
  if (chmod(root.c_str(), 0700) != 0) return Error::FromErrno(errno, what + ": chmod 0700");
  char* real = realpath(root.c_str(), nullptr);
  if (!real) return Error::FromErrno(errno, what + ": realpath");
  std::string abs(real);
  free(real);
  struct statfs sfs;
  if (statfs(abs.c_str(), &sfs) == 0 && sfs.f_type == kOverlayfsMagic)
    return Error(Errc::kUnsupported,
                 what +
                     ": the root is itself on overlayfs, which cannot hold upper dirs; "
                     "use a --root on another file system");
  TRY(MakeDirsAbs(abs + "/l", 0700).Wrap(what));
  std::vector<std::string> options;
  const std::string params = "/sys/module/overlay/parameters/";
  if (PathExists(params + "index")) options.push_back("index=off");
  // Only when the module turns them on by default: every byte counts for mount(2)'s one
  // page of options on kernels without "lowerdir+".
  auto enabled = [&](const char* p) {
    auto v = ReadFile(params + p);
    return v && StartsWith(Trim(*v), "Y");
  };
  if (enabled("redirect_dir")) options.push_back("redirect_dir=off");
  if (enabled("metacopy")) options.push_back("metacopy=off");
  return std::unique_ptr<GraphDriver>(new Overlay2(abs, std::move(options)));
}

}  // namespace shale::graph
