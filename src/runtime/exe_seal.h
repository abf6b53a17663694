// Protection against CVE-2019-5736: a process in a container overwriting the runtime's own
// binary through /proc/<pid>/exe of a runtime process that entered the container (exec, or
// the init before its execve).
//
// The runtime re-executes itself from a copy that cannot be written to: a detached,
// read-only bind mount of its binary (open_tree(OPEN_TREE_CLONE) + mount_setattr
// MOUNT_ATTR_RDONLY + execveat), which costs no copy; where the kernel refuses that, a
// sealed memfd copy (runc 1.1's way). /proc/<pid>/exe then names a file whose every write
// open fails (EROFS, or EPERM for the memfd), and the binary on disk is out of reach.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "util/error.h"

namespace shale::runtime {

// The environment variable holding the binary's own path across the re-exec (for finding
// files beside it, like shale-init).
inline constexpr const char* kExePathEnv = "SHALE_EXE";

// True when /proc/self/exe is already on a read-only mount or a write-sealed memfd.
bool ExeIsProtected();

// REQUIRES: called first in main, single-threaded. Returns at once when ExeIsProtected();
// otherwise execs this program again with the same argv and environment (plus kExePathEnv)
// from a protected copy and does not return. Returns an error only if both ways failed.
Result<void> ReexecProtected(char** argv);

// ReexecProtected when any argument is one of `verbs` (the commands that enter containers;
// the others need not pay for the re-exec). Returns whether it tried; `result` is then its
// error (it returns at all only if already protected or failed).
bool ReexecProtectedFor(int argc, char** argv, std::initializer_list<std::string_view> verbs,
                        Result<void>* result);

// ReexecProtectedFor for a constructor of priority 101, which runs before every other
// constructor of the binary (the C++ runtime's, the static libraries' CPU probes) so that
// the process that re-executes skips them. A constructor cannot report: the error, if any,
// is kept for EarlyReexecError(), which main() asks first.
void ReexecProtectedEarly(int argc, char** argv, std::initializer_list<std::string_view> verbs);
const Error* EarlyReexecError();

// The path of this program's binary on disk: kExePathEnv if set, else /proc/self/exe.
std::string SelfExePath();

}  // namespace shale::runtime
