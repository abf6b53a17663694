#include "runtime/exe_seal.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "util/fd.h"

extern char** environ;

namespace shale::runtime {

bool ExeIsProtected() {
  struct statvfs sv;
  if (statvfs("/proc/self/exe", &sv) == 0 && (sv.f_flag & ST_RDONLY)) return true;
  UniqueFd f(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!f) return false;
  int seals = fcntl(f.get(), F_GET_SEALS);
  return seals >= 0 && (seals & F_SEAL_WRITE);
}

std::string SelfExePath() {
  if (const char* p = getenv(kExePathEnv); p && *p == '/') return p;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

namespace {

// A detached read-only bind mount of the binary: an O_PATH fd to exec from.
UniqueFd ReadonlyClone() {
  UniqueFd tree(static_cast<int>(
      syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree) return {};
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0)
    return {};
  return tree;
}

// A sealed memfd copy of the binary.
UniqueFd SealedCopy() {
  UniqueFd src(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!src) return {};
  struct stat st;
  if (fstat(src.get(), &st) != 0) return {};
  UniqueFd mem(memfd_create("shale-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return {};
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(mem.get(), src.get(), &off, static_cast<size_t>(st.st_size - off));
    if (n <= 0) return {};
  }
  if (fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    return {};
  return mem;
}

}  // namespace

Result<void> ReexecProtected(char** argv) {
  if (ExeIsProtected()) return Ok();
  std::string self = SelfExePath();
  if (!self.empty()) setenv(kExePathEnv, self.c_str(), 1);
  UniqueFd fd = ReadonlyClone();
  if (fd) syscall(SYS_execveat, fd.get(), "", argv, environ, AT_EMPTY_PATH);
  fd = SealedCopy();
  if (fd) syscall(SYS_execveat, fd.get(), "", argv, environ, AT_EMPTY_PATH);
  return Error::FromErrno(errno, "re-execute from a read-only copy of the binary (CVE-2019-5736)");
}

bool ReexecProtectedFor(int argc, char** argv, std::initializer_list<std::string_view> verbs,
                        Result<void>* result) {
  for (int i = 1; i < argc; ++i)
    for (std::string_view v : verbs)
      if (v == argv[i]) {
        *result = ReexecProtected(argv);
        return true;
      }
  return false;
}

namespace {

// A function-local static: built on first use, so it is ready inside a constructor that
// runs before this file's own.
std::optional<Error>& EarlyError() {
  static std::optional<Error> error;
  return error;
}

}  // namespace

void ReexecProtectedEarly(int argc, char** argv, std::initializer_list<std::string_view> verbs) {
  Result<void> sealed = Ok();
  if (ReexecProtectedFor(argc, argv, verbs, &sealed) && !sealed) EarlyError() = sealed.error();
}

const Error* EarlyReexecError() { return EarlyError() ? &*EarlyError() : nullptr; }

}  // namespace shale::runtime
