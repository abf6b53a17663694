#include "sys/mount.h"

#include <fcntl.h>
#include <sys/mount.h>  // glibc 2.36: MS_* flags and the new mount API constants
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "util/fd.h"
#include "util/fs.h"
#include "util/strings.h"

// The new mount API (Linux 5.2+; "lowerdir+" for overlay since 6.8). Constants are guarded
// so that older headers still compile; the calls go through syscall() because glibc < 2.36
// has no wrappers.
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef FSCONFIG_SET_FLAG
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#define SYS_move_mount 429
#endif
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

namespace shale::sys {
namespace {

// mount(2) copies at most one page of option data, NUL included.
constexpr size_t kMountDataMax = 4096 - 1;

int SysFsopen(const char* fs, unsigned flags) { return (int)syscall(SYS_fsopen, fs, flags); }
int SysFsconfig(int fd, unsigned cmd, const char* key, const void* value, int aux) {
  return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}
int SysFsmount(int fd, unsigned flags, unsigned attrs) {
  return (int)syscall(SYS_fsmount, fd, flags, attrs);
}
int SysMoveMount(int from_dfd, const char* from, int to_dfd, const char* to, unsigned flags) {
  return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

// The messages the kernel queued on an fs context ("e overlay: failed to resolve ..."),
// joined with "; ". Empty if there are none.
std::string DrainFsLog(int fsfd) {
  std::string out;
  char buf[1024];
  for (int i = 0; i < 32; i++) {
    ssize_t n = ::read(fsfd, buf, sizeof buf - 1);
    if (n <= 0) break;
    std::string_view msg(buf, n);
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    if (!out.empty()) out += "; ";
    out += msg;
  }
  return out;
}

Error WithLog(Error e, const std::string& log) {
  if (log.empty()) return e;
  return Error(e.code(), e.message() + " (kernel: " + log + ")");
}

Error FsError(int err, const std::string& what, int fsfd) {
  return WithLog(Error::FromErrno(err, what), DrainFsLog(fsfd));
}

// Result of trying the new API: nullopt means "use mount(2)" (kernel too old).
std::optional<Result<void>> MountOverlayNewApi(const OverlaySpec& spec, const std::string& target) {
  const std::string what = "mount overlay at " + target;
  int raw = SysFsopen("overlay", FSOPEN_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOSYS) return std::nullopt;
    return Result<void>(Error::FromErrno(errno, what + ": fsopen overlay"));
  }
  UniqueFd fs(raw);
  for (size_t i = 0; i < spec.lowers.size(); i++) {
    const std::string& lower = spec.lowers[i];
    if (SysFsconfig(fs.get(), FSCONFIG_SET_STRING, "lowerdir+", lower.c_str(), 0) != 0) {
      int err = errno;
      // Kernels before 6.8 do not know "lowerdir+" and refuse the first one with EINVAL.
      std::string log = DrainFsLog(fs.get());
      if (i == 0 && err == EINVAL &&
          (log.empty() || log.find("Unknown parameter") != std::string::npos))
        return std::nullopt;
      return Result<void>(
          WithLog(Error::FromErrno(err, what + ": fsconfig lowerdir+ " + lower + " (layer " +
                                            std::to_string(i + 1) + " of " +
                                            std::to_string(spec.lowers.size()) + ")"),
                  log));
    }
  }
  auto set = [&](const char* key, const std::string& value) -> Result<void> {
    if (SysFsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0)
      return FsError(errno, what + ": fsconfig " + key + "=" + value, fs.get());
    return Ok();
  };
  if (!spec.upper.empty()) {
    if (auto r = set("upperdir", spec.upper); !r) return r;
    if (auto r = set("workdir", spec.work); !r) return r;
  }
  for (const std::string& opt : spec.extra_options) {
    size_t eq = opt.find('=');
    if (eq == std::string::npos) {
      if (SysFsconfig(fs.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0) != 0)
        return Result<void>(FsError(errno, what + ": fsconfig " + opt, fs.get()));
    } else {
      std::string key = opt.substr(0, eq);
      if (auto r = set(key.c_str(), opt.substr(eq + 1)); !r) return r;
    }
  }
  if (SysFsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return Result<void>(FsError(errno, what + ": fsconfig create", fs.get()));
  unsigned attrs = spec.upper.empty() ? MOUNT_ATTR_RDONLY : 0;
  int mraw = SysFsmount(fs.get(), FSMOUNT_CLOEXEC, attrs);
  if (mraw < 0) return Result<void>(FsError(errno, what + ": fsmount", fs.get()));
  UniqueFd mnt(mraw);
  if (SysMoveMount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0)
    return Result<void>(Error::FromErrno(errno, what + ": move_mount"));
  return Result<void>(Ok());
}

std::string OverlayData(const std::vector<std::string>& extra,
                        const std::vector<std::string>& lowers, const std::string& upper,
                        const std::string& work) {
  std::string data;
  for (const auto& o : extra) data += o + ",";
  data += "lowerdir=" + Join(lowers, ":");
  if (!upper.empty()) data += ",upperdir=" + upper + ",workdir=" + work;
  return data;
}

// `abs` relative to directory `base` (both absolute, normalised). Absolute if not below it.
std::string RelativeTo(const std::string& abs, const std::string& base) {
  if (StartsWith(abs, base + "/")) return abs.substr(base.size() + 1);
  return abs;
}

// Runs mount(2) with the cwd temporarily set to `dir`, so that relative option paths are
// resolved there (Docker's mountFrom trick, without the re-exec). The cwd is process-wide:
// callers hold the store lock and shale mounts from a single thread.
Result<void> MountIn(const std::string& dir, const std::string& target, unsigned long flags,
                     const std::string& data) {
  int saved = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (saved < 0) return Error::FromErrno(errno, "open current directory");
  UniqueFd saved_fd(saved);
  if (::chdir(dir.c_str()) != 0) return Error::FromErrno(errno, "chdir " + dir);
  int rc = ::mount("overlay", target.c_str(), "overlay", flags, data.c_str());
  int err = errno;
  if (::fchdir(saved_fd.get()) != 0) {
    // Nothing sane to do but report: the mount itself is done or not as rc says.
  }
  if (rc != 0)
    return Error::FromErrno(err, "mount overlay at " + target + " (" + std::to_string(data.size()) +
                                     " bytes of options, from " + dir + ")");
  return Ok();
}

Result<void> MountOverlayLegacy(const OverlaySpec& spec, const std::string& target) {
  unsigned long flags = spec.upper.empty() ? MS_RDONLY : 0;
  std::string data = OverlayData(spec.extra_options, spec.lowers, spec.upper, spec.work);
  if (data.size() <= kMountDataMax) {
    if (::mount("overlay", target.c_str(), "overlay", flags, data.c_str()) != 0)
      return Error::FromErrno(errno, "mount overlay at " + target);
    return Ok();
  }
  if (spec.short_base.empty() || spec.short_lowers.size() != spec.lowers.size())
    return Error(Errc::kInvalidArgument,
                 "mount overlay at " + target + ": " + std::to_string(data.size()) +
                     " bytes of options exceed one page and no short names were given");
  // Docker's form: "lowerdir=l/A:l/B,upperdir=<id>/diff,workdir=<id>/work" from short_base.
  std::string upper = RelativeTo(spec.upper, spec.short_base);
  std::string work = RelativeTo(spec.work, spec.short_base);
  data = OverlayData(spec.extra_options, spec.short_lowers, upper, work);
  if (data.size() <= kMountDataMax) return MountIn(spec.short_base, target, flags, data);
  // Still too long: when every short name shares a leading directory ("l/"), mount from
  // inside it and drop that prefix from each layer. Buys ~2 bytes a layer (150 layers fit).
  size_t slash = spec.short_lowers[0].find('/');
  std::string prefix = slash == std::string::npos ? "" : spec.short_lowers[0].substr(0, slash);
  bool shared = !prefix.empty();
  for (const auto& s : spec.short_lowers) shared = shared && StartsWith(s, prefix + "/");
  if (shared) {
    std::vector<std::string> stripped;
    for (const auto& s : spec.short_lowers) stripped.push_back(s.substr(prefix.size() + 1));
    auto up = [](const std::string& rel) {
      return rel.empty() || rel[0] == '/' ? rel : "../" + rel;
    };
    data = OverlayData(spec.extra_options, stripped, up(upper), up(work));
    if (data.size() <= kMountDataMax)
      return MountIn(spec.short_base + "/" + prefix, target, flags, data);
  }
  return Error(Errc::kInvalidArgument,
               "mount overlay at " + target + ": " + std::to_string(spec.lowers.size()) +
                   " layers do not fit one page of mount(2) options even with short names, "
                   "and this kernel lacks the new mount API with \"lowerdir+\" (Linux 6.8+); "
                   "use an image with fewer layers or a newer kernel");
}

struct ParsedOptions {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  bool bind = false;
  bool remount = false;
  std::vector<std::string> data;
};

ParsedOptions ParseOptions(const std::vector<std::string>& options) {
  struct Flag {
    const char* name;
    bool clear;
    unsigned long flag;
  };
  static const Flag kFlags[] = {
      {"ro", false, MS_RDONLY},
      {"rw", true, MS_RDONLY},
      {"nosuid", false, MS_NOSUID},
      {"suid", true, MS_NOSUID},
      {"nodev", false, MS_NODEV},
      {"dev", true, MS_NODEV},
      {"noexec", false, MS_NOEXEC},
      {"exec", true, MS_NOEXEC},
      {"sync", false, MS_SYNCHRONOUS},
      {"async", true, MS_SYNCHRONOUS},
      {"relatime", false, MS_RELATIME},
      {"norelatime", true, MS_RELATIME},
      {"strictatime", false, MS_STRICTATIME},
      {"nostrictatime", true, MS_STRICTATIME},
      {"noatime", false, MS_NOATIME},
      {"atime", true, MS_NOATIME},
      {"nodiratime", false, MS_NODIRATIME},
      {"diratime", true, MS_NODIRATIME},
      {"dirsync", false, MS_DIRSYNC},
      {"mand", false, MS_MANDLOCK},
      {"nomand", true, MS_MANDLOCK},
      {"silent", false, MS_SILENT},
  };
  static const Flag kPropagation[] = {
      {"private", false, MS_PRIVATE},       {"rprivate", false, MS_PRIVATE | MS_REC},
      {"slave", false, MS_SLAVE},           {"rslave", false, MS_SLAVE | MS_REC},
      {"shared", false, MS_SHARED},         {"rshared", false, MS_SHARED | MS_REC},
      {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
  };
  ParsedOptions p;
  for (const std::string& opt : options) {
    bool known = false;
    for (const Flag& f : kFlags) {
      if (opt == f.name) {
        if (f.clear)
          p.flags &= ~f.flag;
        else
          p.flags |= f.flag;
        known = true;
        break;
      }
    }
    if (known) continue;
    for (const Flag& f : kPropagation) {
      if (opt == f.name) {
        p.propagation = f.flag;
        known = true;
        break;
      }
    }
    if (known) continue;
    if (opt == "bind") {
      p.bind = true;
      p.flags |= MS_BIND;
    } else if (opt == "rbind") {
      p.bind = true;
      p.flags |= MS_BIND | MS_REC;
    } else if (opt == "remount") {
      p.remount = true;
      p.flags |= MS_REMOUNT;
    } else if (opt == "defaults") {
    } else if (!opt.empty()) {
      p.data.push_back(opt);
    }
  }
  return p;
}

}  // namespace

Result<void> MountOverlay(const OverlaySpec& spec, const std::string& target) {
  if (spec.lowers.empty())
    return Error(Errc::kInvalidArgument, "mount overlay at " + target + ": no lower layers");
  if (!spec.upper.empty() && spec.work.empty())
    return Error(Errc::kInvalidArgument, "mount overlay at " + target + ": upper without work");
  if (spec.upper.empty() && spec.lowers.size() < 2)
    return Error(Errc::kInvalidArgument,
                 "mount overlay at " + target + ": a read-only overlay needs two lower layers");
  const char* mode = getenv("SHALE_OVERLAY_MOUNT");
  if (!(mode && std::string_view(mode) == "legacy")) {
    if (auto r = MountOverlayNewApi(spec, target)) return std::move(*r);
  }
  return MountOverlayLegacy(spec, target);
}

Result<void> Mount(const MountSpec& spec) {
  ParsedOptions p = ParseOptions(spec.options);
  if (spec.type == "bind" || spec.type == "rbind") {
    p.bind = true;
    p.flags |= MS_BIND | (spec.type == "rbind" ? MS_REC : 0);
  }
  const std::string what = "mount " + (spec.type.empty() ? std::string("(none)") : spec.type) +
                           " " + spec.source + " at " + spec.target;
  std::string data = Join(p.data, ",");
  const char* type = p.bind || spec.type.empty() ? nullptr : spec.type.c_str();
  const char* source = spec.source.empty() ? nullptr : spec.source.c_str();
  // A bare propagation change ("rprivate" on an existing mount) needs no first call.
  bool only_propagation = p.propagation && spec.type.empty() && spec.source.empty() && !p.remount &&
                          p.flags == 0 && p.data.empty();
  if (!only_propagation) {
    // MS_BIND ignores MS_RDONLY and the other per-mount flags on the first call (unless
    // remounting), so a read-only bind takes a second MS_REMOUNT|MS_BIND call.
    if (::mount(source ? source : "none", spec.target.c_str(), type, p.flags,
                data.empty() ? nullptr : data.c_str()) != 0)
      return Error::FromErrno(errno, what);
    unsigned long per_mount = p.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                         MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
    if (p.bind && !p.remount && per_mount) {
      if (::mount(nullptr, spec.target.c_str(), nullptr, MS_REMOUNT | MS_BIND | per_mount,
                  nullptr) != 0) {
        int err = errno;
        ::umount2(spec.target.c_str(), MNT_DETACH);
        return Error::FromErrno(err, what + ": remount bind with flags");
      }
    }
  }
  if (p.propagation) {
    if (::mount(nullptr, spec.target.c_str(), nullptr, p.propagation, nullptr) != 0) {
      int err = errno;
      // Do not leave behind the mount this call made (a remount changed nothing new).
      if (!only_propagation && !p.remount) ::umount2(spec.target.c_str(), MNT_DETACH);
      return Error::FromErrno(err, what + ": set propagation");
    }
  }
  return Ok();
}

Result<void> Unmount(const std::string& target, bool lazy) {
  if (::umount2(target.c_str(), lazy ? MNT_DETACH : 0) != 0) {
    if (errno == EINVAL || errno == ENOENT) return Ok();
    return Error::FromErrno(errno, std::string(lazy ? "umount (lazy) " : "umount ") + target);
  }
  return Ok();
}

namespace {

std::optional<uint64_t> MountIdOf(const std::string& path) {
  struct statx stx;
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0)
    return std::nullopt;
  if (!(stx.stx_mask & STATX_MNT_ID)) return std::nullopt;
  return stx.stx_mnt_id;
}

// Undoes mountinfo's octal escapes (\040 for a space, ...).
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (int k = 1; k <= 3; k++) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out += (char)v;
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// Kernels without STATX_MNT_ID (< 5.8): look for `path` as a mount point in mountinfo.
bool InMountInfo(const std::string& path) {
  auto text = ReadFile("/proc/self/mountinfo");
  if (!text) return false;
  for (const std::string& line : Split(*text, '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    if (f.size() > 4 && Unescape(f[4]) == path) return true;
  }
  return false;
}

}  // namespace

bool IsMountPoint(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (!real) return false;
  std::string abs(real);
  free(real);
  if (abs == "/") return true;
  auto self = MountIdOf(abs);
  auto parent = MountIdOf(Dirname(abs));
  if (self && parent) return *self != *parent;
  return InMountInfo(abs);
}

ScopedMount& ScopedMount::operator=(ScopedMount&& o) noexcept {
  if (this != &o) {
    if (!target_.empty()) (void)Unmount(target_, /*lazy=*/true);
    target_ = std::exchange(o.target_, "");
  }
  return *this;
}

ScopedMount::~ScopedMount() {
  if (!target_.empty()) (void)Unmount(target_, /*lazy=*/true);
}

}  // namespace shale::sys
