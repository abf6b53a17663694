#include "cli/main.h"
#include "runtime/exe_seal.h"
#include "util/log.h"

int main(int argc, char** argv) {
  // Commands that put a process of ours inside a container run from a read-only copy of
  // this binary (CVE-2019-5736).
  shale::Result<void> sealed = shale::Ok();
  if (shale::runtime::ReexecProtectedFor(argc, argv, {"run", "start", "restart", "exec", "build"},
                                         &sealed) &&
      !sealed) {
    shale::LogError(sealed.error().message());
    return 125;
  }
  return shale::cli::Main(argc, argv);
}
