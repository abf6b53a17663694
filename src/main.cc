#include "cli/main.h"
#include "runtime/exe_seal.h"
#include "util/log.h"

namespace {

// Commands that put a process of ours inside a container run from a read-only copy of this
// binary (CVE-2019-5736), re-executed before any other constructor runs.
__attribute__((constructor(101))) void ReexecEarly(int argc, char** argv, char** /*envp*/) {
  shale::runtime::ReexecProtectedEarly(argc, argv, {"run", "start", "restart", "exec", "build"});
}

}  // namespace

int main(int argc, char** argv) {
  if (const shale::Error* e = shale::runtime::EarlyReexecError()) {
    shale::LogError(e->message());
    return 125;
  }
  return shale::cli::Main(argc, argv);
}
