#include <cstdio>

#include "runc/runc.h"
#include "runtime/exe_seal.h"

int main(int argc, char** argv) {
  // create, run and exec put a process of ours inside the container: run them from a
  // read-only copy of this binary (CVE-2019-5736).
  shale::Result<void> sealed = shale::Ok();
  if (shale::runtime::ReexecProtectedFor(argc, argv, {"create", "run", "exec"}, &sealed) &&
      !sealed) {
    fprintf(stderr, "shale-runc: %s\n", sealed.error().message().c_str());
    return 1;
  }
  return shale::runc::Main(argc, argv);
}
