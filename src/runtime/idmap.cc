#include "runtime/idmap.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "runtime/init.h"
#include "runtime/linux_mount.h"
#include "util/fs.h"
#include "util/strings.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace shale::runtime {
namespace {

// Kills and reaps the holder of a user namespace being made, whatever happens.
struct Reaper {
  pid_t pid = -1;
  ~Reaper() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
};

// The type of the file system holding `path` ("ramfs"), from mountinfo; "" if unknown.
std::string FsTypeOf(const std::string& path) {
  struct statx stx;
  if (statx(AT_FDCWD, path.c_str(), AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0 ||
      !(stx.stx_mask & STATX_MNT_ID))
    return "";
  auto info = ReadFile("/proc/self/mountinfo");
  if (!info) return "";
  std::string id = std::to_string(stx.stx_mnt_id);
  for (std::string_view line : Split(*info, '\n')) {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the type follows "-".
    std::vector<std::string> f = Split(line, ' ');
    if (f.empty() || f[0] != id) continue;
    for (size_t i = 1; i + 1 < f.size(); ++i)
      if (f[i] == "-") return f[i + 1];
  }
  return "";
}

int MountSetattr(int fd, unsigned flags, struct mount_attr* attr) {
  return static_cast<int>(
      syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | flags, attr, sizeof(*attr)));
}

// The detached, private, idmapped clone of `m.source`.
Result<UniqueFd> OpenIdmappedTree(const PlannedMount& m, int userns_fd) {
  bool rbind = (m.options.flags & MS_REC) != 0;
  UniqueFd tree(static_cast<int>(
      syscall(SYS_open_tree, AT_FDCWD, m.source.c_str(),
              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_NO_AUTOMOUNT | (rbind ? AT_RECURSIVE : 0))));
  if (!tree) {
    Error e = Error::FromErrno(errno, "open_tree(OPEN_TREE_CLONE) " + m.source);
    if (errno == ENOSYS) return Error(e.code(), e.message() + " (idmapped mounts need Linux 5.12)");
    return e;
  }
  // The clone of a shared host mount would be its peer: what the container mounts below it
  // would show on the host. Private first (the spec's own propagation is applied once it is
  // attached, as for every bind).
  struct mount_attr priv = {};
  priv.propagation = MS_PRIVATE;
  if (MountSetattr(tree.get(), AT_RECURSIVE, &priv) != 0)
    return Error::FromErrno(errno, "mount_setattr(MS_PRIVATE) " + m.source);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (MountSetattr(tree.get(), m.idmap->recursive ? AT_RECURSIVE : 0, &attr) != 0) {
    int err = errno;
    Error e = Error::FromErrno(err, "mount_setattr(MOUNT_ATTR_IDMAP) " + m.source);
    std::string why;
    if (err == EINVAL) {
      std::string fs = FsTypeOf(m.source);
      why = " (the " + (fs.empty() ? std::string("file system") : fs + " file system") + " of " +
            m.source + " does not support idmapped mounts on this kernel" +
            (m.idmap->recursive ? ", or one of the mounts below it does" : "") + ")";
    } else if (err == EPERM) {
      why = " (needs CAP_SYS_ADMIN in the initial user namespace, and a mapping the source's "
            "file system may take)";
    } else if (err == ENOSYS) {
      why = " (idmapped mounts need Linux 5.12)";
    }
    return Error(e.code(), e.message() + why);
  }
  return tree;
}

}  // namespace

Result<std::optional<MountIdmap>> PlanMountIdmap(const oci::Mount& m, const MountOptions& o,
                                                 const oci::RuntimeSpec& spec, bool rootless) {
  std::string what = "mount " + m.destination;
  for (const std::string& opt : m.options)
    if (StartsWith(opt, "idmap=") || StartsWith(opt, "ridmap="))
      return Error(Errc::kInvalidArgument,
                   what + ": option \"" + opt + "\" (crun's own mapping syntax) is not "
                   "supported; give the mapping as the mount's uidMappings and gidMappings");
  bool mapped = !m.uid_mappings.empty() || !m.gid_mappings.empty();
  if (!o.idmap && !mapped) return std::optional<MountIdmap>();
  if (!o.bind)
    return Error(Errc::kInvalidArgument,
                 what + ": idmapped mounts (options idmap/ridmap, uidMappings/gidMappings) are "
                 "bind mounts only; this one is of type \"" + m.type + "\" (add \"bind\" or "
                 "\"rbind\" to its options to bind a directory)");
  if (rootless)
    return Error(Errc::kPermission,
                 what + ": idmapped mounts need a runtime running as root in the initial user "
                 "namespace (mount_setattr MOUNT_ATTR_IDMAP); this one is rootless");
  MountIdmap idm;
  idm.recursive = o.idmap_recursive;
  if (mapped) {  // both, as decoding checked
    idm.uid = m.uid_mappings;
    idm.gid = m.gid_mappings;
    return std::optional<MountIdmap>(std::move(idm));
  }
  // No mappings: the container's user namespace's (config.md "MAY use the container's user
  // namespace mapping, otherwise an error MUST be returned").
  for (const oci::Namespace& n : spec.linux.namespaces) {
    if (n.type != "user") continue;
    if (!n.path.empty()) {
      idm.userns_path = n.path;
    } else {
      idm.uid = spec.linux.uid_mappings;
      idm.gid = spec.linux.gid_mappings;
    }
    return std::optional<MountIdmap>(std::move(idm));
  }
  return Error(Errc::kInvalidArgument,
               what + ": option " + (o.idmap_recursive ? "ridmap" : "idmap") +
                   " without uidMappings/gidMappings takes the container's user namespace "
                   "mapping, and linux.namespaces has no user namespace; give the mount "
                   "uidMappings and gidMappings, or the container a user namespace");
}

std::string FormatIdMap(const std::vector<oci::IdMapping>& maps) {
  std::string text;
  for (const oci::IdMapping& m : maps)
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  return text;
}

Result<void> WriteIdMap(pid_t pid, const char* file, const std::vector<oci::IdMapping>& maps,
                        std::string_view whose) {
  std::string text = FormatIdMap(maps);
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!f || write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return Error::FromErrno(errno, "write " + std::string(file) + " of " + std::string(whose) +
                                       " (overlapping or out-of-range mappings?)");
  return Ok();
}

Result<UniqueFd> NewUserNamespace(const std::vector<oci::IdMapping>& uid,
                                  const std::vector<oci::IdMapping>& gid) {
  pid_t parent = getpid();
  // clone(2) without a stack is fork(2) into a new user namespace: the child is in it from
  // its first instruction, so no handshake is needed before its maps are written.
  Reaper holder;
  holder.pid = static_cast<pid_t>(
      syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (holder.pid < 0) return Error::FromErrno(errno, "clone a user namespace for a mount");
  if (holder.pid == 0) {
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == parent)
      for (;;) pause();
    _exit(0);
  }
  const char* whose = "the user namespace of an idmapped mount";
  TRY(WriteIdMap(holder.pid, "uid_map", uid, whose));
  TRY(WriteIdMap(holder.pid, "gid_map", gid, whose));
  std::string ns = "/proc/" + std::to_string(holder.pid) + "/ns/user";
  UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::FromErrno(errno, "open " + ns);
  return fd;
}

Result<std::vector<UniqueFd>> OpenIdmappedTrees(std::vector<PlannedMount>* mounts) {
  std::vector<UniqueFd> trees;
  std::map<std::string, UniqueFd> userns;  // by mapping ("u...|g...") or by path
  for (PlannedMount& m : *mounts) {
    if (!m.idmap) continue;
    std::string what = "mount " + m.destination;
    const MountIdmap& idm = *m.idmap;
    std::string key = idm.userns_path.empty()
                          ? FormatIdMap(idm.uid) + "|" + FormatIdMap(idm.gid)
                          : "path " + idm.userns_path;
    auto it = userns.find(key);
    if (it == userns.end()) {
      UniqueFd ns;
      if (idm.userns_path.empty()) {
        ns = TRY(NewUserNamespace(idm.uid, idm.gid).Wrap(what));
      } else {
        ns = UniqueFd(::open(idm.userns_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!ns)
          return Error::FromErrno(errno, what + ": open the container's user namespace " +
                                             idm.userns_path);
      }
      it = userns.emplace(key, std::move(ns)).first;
    }
    UniqueFd tree = TRY(OpenIdmappedTree(m, it->second.get()).Wrap(what));
    m.tree_fd = tree.get();
    trees.push_back(std::move(tree));
  }
  return trees;
}

}  // namespace shale::runtime
