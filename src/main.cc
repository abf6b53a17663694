#include <cerrno>

#include "cli/main.h"
#include "runtime/exe_seal.h"
#include "util/log.h"

namespace {

// Set by ReexecEarly when the re-exec failed (plain ints: a constructor of ours runs before
// the C++ runtime's, and a global with a constructor would be reset after it).
int reexec_failed_errno = 0;

// Commands that put a process of ours inside a container run from a read-only copy of this
// binary (CVE-2019-5736). Done in a constructor of priority 101, before every other one in
// the binary (the C++ streams and locale, OpenSSL's and nettle's CPU probes, which a VM pays
// for in trapped CPUID instructions): the process that re-executes skips them.
__attribute__((constructor(101))) void ReexecEarly(int argc, char** argv, char** /*envp*/) {
  shale::Result<void> sealed = shale::Ok();
  if (shale::runtime::ReexecProtectedFor(argc, argv, {"run", "start", "restart", "exec", "build"},
                                         &sealed) &&
      !sealed)
    reexec_failed_errno = errno ? errno : EPERM;
}

}  // namespace

int main(int argc, char** argv) {
  if (reexec_failed_errno) {
    shale::LogError(shale::Error::FromErrno(reexec_failed_errno,
                                            "re-execute from a read-only copy of the binary "
                                            "(CVE-2019-5736)")
                        .message());
    return 125;
  }
  return shale::cli::Main(argc, argv);
}
