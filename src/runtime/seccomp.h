// Seccomp for the container's processes: the spec's linux.seccomp compiled by libseccomp in
// the parent (before clone), loaded by the child with one seccomp(2) call just before it
// drops privileges or execs.
//
// SCMP_ACT_NOTIFY (user notification): the child loads the filter with
// SECCOMP_FILTER_FLAG_NEW_LISTENER, which returns the notify fd; it hands that fd to the
// runtime over the stage channel (Stage::kSeccompFd) before it reports kReadyToExec, and the
// runtime passes it on to linux.seccomp.listenerPath (SendToSeccompListener).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "oci/runtime_spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace shale::runtime {

struct SeccompProgram {
  std::vector<struct sock_filter> insns;  // classic BPF, as the kernel takes it
  unsigned int flags = 0;                 // SECCOMP_FILTER_FLAG_*
  // Some rule is SCMP_ACT_NOTIFY: loaded with SECCOMP_FILTER_FLAG_NEW_LISTENER, its notify
  // fd goes to the spec's listenerPath.
  bool listener = false;
  bool empty() const { return insns.empty(); }
};

// Compiles `spec` for the native architecture plus spec.architectures. Syscall names the
// installed libseccomp does not know are skipped (a newer profile on an older system); rules
// whose action equals the default are dropped. kInvalidArgument naming the bad action,
// architecture, operator or flag; and for SCMP_ACT_NOTIFY without a listenerPath (the spec:
// it MUST be set then), as the default action (every syscall of the init would wait for an
// agent that has no fd yet), or on sendmsg (the init hands the notify fd over with it).
Result<SeccompProgram> CompileSeccomp(const oci::Seccomp& spec);

// What a compiled program depends on, as one string: every field of `spec` that reaches
// libseccomp, libseccomp's version, and the kernel release and machine (which together fix
// libseccomp's API level). Equal keys compile to equal programs. Pure but for those reads.
std::string SeccompCacheKey(const oci::Seccomp& spec);

// Compiled programs kept between containers, by SeccompCacheKey. The engine keeps them in
// its store (container/seccomp_cache.h); the runtime alone compiles every time.
class SeccompCache {
 public:
  virtual ~SeccompCache() = default;
  virtual std::optional<SeccompProgram> Get(const std::string& key) = 0;
  virtual void Put(const std::string& key, const SeccompProgram& prog) = 0;
};

// CompileSeccomp through `cache` (nullptr: none): the default profile costs libseccomp
// ~0.7 ms of CPU to compile (every rule translated for three architectures) on every
// container start; a hit reads ~2 KB instead. Errors are CompileSeccomp's.
Result<SeccompProgram> CompileSeccompCached(const oci::Seccomp& spec, SeccompCache* cache);

// The linux.seccomp.flags CompileSeccomp takes (features.md knownFlags), and those of them
// this kernel takes too (supportedFlags; asked of seccomp(2), as runc does).
std::vector<std::string> KnownSeccompFlags();
std::vector<std::string> SupportedSeccompFlags();

// Child side: installs the filter on the calling thread. Needs no_new_privs or
// CAP_SYS_ADMIN. Allocates nothing. Returns the notify fd (CLOEXEC) when prog.listener, an
// empty one otherwise.
Result<UniqueFd> LoadSeccomp(const SeccompProgram& prog);

// The container process state (config-linux.md) for a listener: ociVersion (the state's),
// fds ["seccompFd"], pid, metadata (when not empty), state. Pure.
nlohmann::json ContainerProcessState(pid_t pid, const std::string& metadata,
                                     const nlohmann::json& state);

// Connects to `path` (AF_UNIX, SOCK_STREAM), sends `process_state` as JSON with
// `seccomp_fd` attached (SCM_RIGHTS) in one sendmsg, and closes the connection; the caller
// keeps its copy of the fd. Errors name the path: kNotFound when there is no socket there,
// kInvalidArgument for a path too long for a unix socket address.
Result<void> SendToSeccompListener(const std::string& path, const nlohmann::json& process_state,
                                   int seccomp_fd);

}  // namespace shale::runtime
