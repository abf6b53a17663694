// Seccomp for the container's processes: the spec's linux.seccomp compiled by libseccomp in
// the parent (before clone), loaded by the child with one seccomp(2) call just before it
// drops privileges or execs.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runtime {

struct SeccompProgram {
  std::vector<struct sock_filter> insns;  // classic BPF, as the kernel takes it
  unsigned int flags = 0;                 // SECCOMP_FILTER_FLAG_*
  bool empty() const { return insns.empty(); }
};

// Compiles `spec` for the native architecture plus spec.architectures. Syscall names the
// installed libseccomp does not know are skipped (a newer profile on an older system); rules
// whose action equals the default are dropped. kInvalidArgument naming the bad action,
// architecture, operator or flag.
Result<SeccompProgram> CompileSeccomp(const oci::Seccomp& spec);

// Child side: installs the filter on the calling thread. Needs no_new_privs or
// CAP_SYS_ADMIN. Allocates nothing.
Result<void> LoadSeccomp(const SeccompProgram& prog);

}  // namespace shale::runtime
