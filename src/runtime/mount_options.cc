#include "runtime/mount_options.h"

#include "runtime/linux_mount.h"

#include <cstring>

namespace shale::runtime {
namespace {

struct FlagWord {
  const char* name;
  bool clear;
  unsigned long flag;
};

constexpr FlagWord kFlags[] = {
    {"ro", false, MS_RDONLY},         {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},     {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},       {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},     {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},  {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},   {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},     {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},      {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME}, {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
};

struct PropWord {
  const char* name;
  unsigned long flag;
};

constexpr PropWord kProps[] = {
    {"private", MS_PRIVATE},   {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},     {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},       {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

}  // namespace

bool MountOptions::NeedsRemount() const {
  return bind && (flags & ~(MS_BIND | MS_REC)) != 0;
}

MountOptions ParseMountOptions(const std::string& type, const std::vector<std::string>& options) {
  MountOptions m;
  if (type == "bind") m.bind = true;
  for (const std::string& o : options) {
    if (o == "bind") {
      m.bind = true;
      continue;
    }
    if (o == "rbind") {
      m.bind = true;
      m.flags |= MS_REC;
      continue;
    }
    if (o == "idmap" || o == "ridmap") {
      m.idmap = true;
      m.idmap_recursive = (o == "ridmap");
      continue;
    }
    if (o == "defaults" || o == "tmpcopyup" || o.empty()) continue;
    bool known = false;
    for (const FlagWord& f : kFlags) {
      if (o == f.name) {
        if (f.clear)
          m.flags &= ~f.flag;
        else
          m.flags |= f.flag;
        known = true;
        break;
      }
    }
    for (const PropWord& p : kProps) {
      if (!known && o == p.name) {
        m.propagation |= p.flag;
        known = true;
      }
    }
    if (known) continue;
    if (!m.data.empty()) m.data += ',';
    m.data += o;
  }
  if (m.bind) m.flags |= MS_BIND;
  return m;
}

}  // namespace shale::runtime
