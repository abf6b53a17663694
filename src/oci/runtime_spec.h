// The OCI runtime spec (config.json), the only input of the runtime (runtime-spec v1.1).
// Data only; JSON (de)serialisation in runtime_spec.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

// gnu++20 predefines `linux` as 1; the spec has a member of that name.
#ifdef linux
#undef linux
#endif

namespace shale::oci {

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
};

struct Capabilities {
  std::vector<std::string> bounding, effective, inheritable, permitted, ambient;  // "CAP_CHOWN"
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t hard = 0;
  uint64_t soft = 0;
};

struct Process {
  bool terminal = false;
  uint32_t console_height = 0, console_width = 0;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";
  Capabilities capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
};

struct Root {
  std::string path;  // absolute: the already mounted rootfs (overlay2/<id>/merged)
  bool readonly = false;
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct Namespace {
  std::string type;  // "pid", "network", "mount", "ipc", "uts", "user", "cgroup"
  std::string path;  // join an existing one if set
};

struct LinuxResources {
  std::optional<int64_t> memory_limit;  // bytes
  std::optional<int64_t> memory_swap;
  std::optional<int64_t> cpu_quota;     // microseconds per period
  std::optional<uint64_t> cpu_period;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> pids_limit;
};

struct Linux {
  std::vector<Namespace> namespaces;
  LinuxResources resources;
  std::string cgroups_path;  // "shale/<id>" (relative to the hierarchy roots)
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
};

struct RuntimeSpec {
  std::string oci_version = "1.1.0";
  Process process;
  Root root;
  std::string hostname;
  std::vector<Mount> mounts;
  Linux linux;
  nlohmann::json annotations = nlohmann::json::object();
};

nlohmann::json ToJson(const RuntimeSpec& spec);
// kInvalidArgument naming the field on malformed input.
Result<RuntimeSpec> RuntimeSpecFromJson(const nlohmann::json& j);

// Docker's default capability set (14 capabilities).
std::vector<std::string> DefaultCapabilities();
// Docker's masked and read-only /proc paths.
std::vector<std::string> DefaultMaskedPaths();
std::vector<std::string> DefaultReadonlyPaths();

}  // namespace shale::oci
