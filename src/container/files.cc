#include "container/files.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "container/spec.h"
#include "runtime/exe_seal.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::container {

Result<void> WriteJsonFast(const std::string& path, const nlohmann::json& j) {
  return WriteFileReplace(path, j.dump(), 0600);
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  std::string s = TRY(ReadFile(path));
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (j.is_discarded()) return Error(Errc::kCorrupt, path + ": not valid JSON");
  return j;
}

Result<void> FillInitLayer(const Dir& diff) {
  Dir etc = TRY(diff.MakeDirs("etc"));
  for (const char* rel : {"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"})
    TRY(diff.OpenAt(rel, O_WRONLY | O_CREAT | O_CLOEXEC, rel[0] == '.' ? 0755 : 0644));
  if (symlinkat("/proc/mounts", etc.fd(), "mtab") != 0 && errno != EEXIST)
    return Error::FromErrno(errno, "symlink etc/mtab");
  for (const char* rel : {"dev/pts", "dev/shm", "proc", "sys"}) TRY(diff.MakeDirs(rel));
  TRY(diff.OpenAt("dev/console", O_WRONLY | O_CREAT | O_CLOEXEC, 0755));
  return Ok();
}

Result<void> WriteHostFiles(const std::string& dir, const std::string& hostname,
                            const std::string& network_mode) {
  auto write = [&](const char* name, const std::string& data) -> Result<void> {
    std::string p = dir + "/" + name;
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return Error::FromErrno(errno, "open " + p);
    return WriteAll(fd.get(), data, p);
  };
  TRY(write("hostname", hostname + "\n"));
  std::string host_resolv = ReadFile("/etc/resolv.conf").value_or("");
  if (network_mode == "host") {
    TRY(write("hosts", ReadFile("/etc/hosts").value_or(HostsFile(hostname))));
    TRY(write("resolv.conf", host_resolv));
  } else {
    TRY(write("hosts", HostsFile(hostname)));
    TRY(write("resolv.conf", FilterResolvConf(host_resolv)));
  }
  return Ok();
}

std::string FindInitBinary() {
  if (const char* e = getenv("SHALE_INIT"); e && *e) return PathExists(e) ? e : "";
  std::string self = runtime::SelfExePath();  // /proc/self/exe is a read-only copy
  if (self.empty()) return "";
  std::string p = Dirname(self) + "/shale-init";
  return PathExists(p) ? p : "";
}

}  // namespace shale::container
