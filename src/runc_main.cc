#include <cstdio>

#include "runc/runc.h"
#include "runtime/exe_seal.h"

namespace {

// create, run and exec put a process of ours inside the container: they run from a
// read-only copy of this binary (CVE-2019-5736), re-executed before any other constructor.
__attribute__((constructor(101))) void ReexecEarly(int argc, char** argv, char** /*envp*/) {
  shale::runtime::ReexecProtectedEarly(argc, argv, {"create", "run", "exec"});
}

}  // namespace

int main(int argc, char** argv) {
  if (const shale::Error* e = shale::runtime::EarlyReexecError()) {
    fprintf(stderr, "shale-runc: %s\n", e->message().c_str());
    return 1;
  }
  return shale::runc::Main(argc, argv);
}
