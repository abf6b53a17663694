#include "registry/resolve.h"

#include <sys/utsname.h>

#include "util/strings.h"

namespace shale::registry {
namespace {

std::string NormVariant(const std::string& arch, const std::string& v) {
  if (arch == "arm64" && v == "v8") return "";
  if (arch == "amd64" && v == "v1") return "";
  return v;
}

// Variants a host of variant `v` runs, best first.
std::vector<std::string> Compatible(const std::string& arch, const std::string& v) {
  if (arch == "arm") {
    if (v == "v8") return {"v8", "v7", "v6", "v5"};
    if (v == "v7" || v.empty()) return {"v7", "v6", "v5"};
    if (v == "v6") return {"v6", "v5"};
    return {v};
  }
  return {NormVariant(arch, v)};
}

}  // namespace

Result<oci::Platform> ParsePlatform(std::string_view s) {
  std::vector<std::string> parts = Split(s, '/');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty()))
    return Error(Errc::kInvalidArgument,
                 "platform \"" + std::string(s) + "\": expected OS/ARCH[/VARIANT], e.g. linux/arm64");
  oci::Platform p;
  p.os = parts[0];
  p.architecture = parts[1];
  if (p.architecture == "x86_64" || p.architecture == "x86-64") p.architecture = "amd64";
  if (p.architecture == "aarch64") p.architecture = "arm64";
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

oci::Platform HostPlatform() {
  oci::Platform p;
  p.os = "linux";
  struct utsname u;
  std::string m = uname(&u) == 0 ? u.machine : "x86_64";
  if (m == "x86_64") p.architecture = "amd64";
  else if (m == "aarch64") p.architecture = "arm64";
  else if (m == "i686" || m == "i386") p.architecture = "386";
  else if (StartsWith(m, "armv7")) { p.architecture = "arm"; p.variant = "v7"; }
  else if (StartsWith(m, "armv6")) { p.architecture = "arm"; p.variant = "v6"; }
  else if (m == "ppc64le") p.architecture = "ppc64le";
  else if (m == "s390x") p.architecture = "s390x";
  else if (m == "riscv64") p.architecture = "riscv64";
  else p.architecture = m;
  return p;
}

std::string PlatformString(const oci::Platform& p) {
  std::string s = p.os + "/" + p.architecture;
  if (!p.variant.empty()) s += "/" + p.variant;
  return s;
}

std::optional<oci::Descriptor> SelectManifest(const oci::Index& index, const oci::Platform& want) {
  if (index.manifests.size() == 1 && index.manifests[0].platform.os.empty() &&
      index.manifests[0].platform.architecture.empty())
    return index.manifests[0];
  std::vector<std::string> variants = Compatible(want.architecture, want.variant);
  for (const auto& v : variants)
    for (const auto& d : index.manifests) {
      const auto& p = d.platform;
      if (p.os != want.os || p.architecture != want.architecture) continue;
      std::string pv = NormVariant(p.architecture, p.variant);
      // No wanted variant: any variant of the architecture will do, the plain one first.
      if (want.variant.empty() && want.architecture != "arm") {
        if (pv.empty()) return d;
        continue;
      }
      if (pv == v || (pv.empty() && v == variants.front() && want.architecture != "arm")) return d;
    }
  if (want.variant.empty())
    for (const auto& d : index.manifests)
      if (d.platform.os == want.os && d.platform.architecture == want.architecture) return d;
  return std::nullopt;
}

}  // namespace shale::registry
