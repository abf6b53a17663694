#include <cerrno>
#include <cstdio>
#include <cstring>

#include "runc/runc.h"
#include "runtime/exe_seal.h"

namespace {

// As shale's main.cc: create, run and exec put a process of ours inside the container, so
// they run from a read-only copy of this binary (CVE-2019-5736); re-executed from a
// constructor that runs before every other one, so the first process skips them.
int reexec_failed_errno = 0;

__attribute__((constructor(101))) void ReexecEarly(int argc, char** argv, char** /*envp*/) {
  shale::Result<void> sealed = shale::Ok();
  if (shale::runtime::ReexecProtectedFor(argc, argv, {"create", "run", "exec"}, &sealed) &&
      !sealed)
    reexec_failed_errno = errno ? errno : EPERM;
}

}  // namespace

int main(int argc, char** argv) {
  if (reexec_failed_errno) {
    fprintf(stderr, "shale-runc: re-execute from a read-only copy of the binary "
                    "(CVE-2019-5736): %s\n",
            strerror(reexec_failed_errno));
    return 1;
  }
  return shale::runc::Main(argc, argv);
}
