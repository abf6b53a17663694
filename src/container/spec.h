// A container's configuration and its OCI runtime spec. Pure: parsing `run`/`create` flags,
// merging them with the image config, and turning the result into an oci::RuntimeSpec never
// touch the system (user lookup reads through a rooted Dir; ulimit checks read getrlimit).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "network/ports.h"
#include "oci/runtime_spec.h"
#include "util/dir.h"
#include "util/error.h"

namespace shale::container {

inline constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The flags of `run` and `create`, as typed.
struct CreateOptions {
  std::string name;
  std::string image;
  std::vector<std::string> cmd;                // after IMAGE; empty: the image's Cmd
  std::optional<std::string> entrypoint;       // --entrypoint ("" resets the image's)
  std::vector<std::string> env;                // -e K=V or -e K (taken from our env)
  std::vector<std::string> env_files;          // --env-file
  std::string workdir, user, hostname;
  std::vector<std::string> volumes;            // -v SRC:DST[:ro]
  bool read_only = false, interactive = false, tty = false, privileged = false;
  bool init = false, auto_remove = false, no_pivot = false;
  // bridge (docker's default) | host | none | container:NAME|ID | a user network's name
  std::string network = "bridge";
  std::vector<std::string> network_aliases;    // --network-alias (user networks)
  std::vector<std::string> publish;            // -p specs, as typed
  bool publish_all = false;                    // -P
  std::string memory;                          // "32m"
  std::string cpus;                            // "1.5"
  std::string pids_limit;  // as typed; "" = the default
  std::vector<std::string> cap_add, cap_drop, ulimits, security_opt;
  // Not a flag: set by `run`, whose start follows at once. The network setup (the CNI ADDs,
  // ~13 ms of plugin work) then begins in Create and goes on behind the layers, the mount
  // and the runtime's create. `create` alone attaches nothing: that waits for `start`.
  bool start_now = false;
};

struct Bind {
  std::string source, destination;
  bool readonly = false;
};

// Docker's "Config": the image config merged with the flags.
struct ContainerConfig {
  std::string hostname;
  std::string user;
  std::vector<std::string> env;
  std::vector<std::string> entrypoint, cmd;
  std::string working_dir;
  std::string image;          // as the user named it
  bool tty = false, open_stdin = false;
  std::string stop_signal;    // "" = SIGTERM
  nlohmann::json labels = nlohmann::json::object();
};

// Docker's "HostConfig".
struct HostConfig {
  int64_t memory = 0, nano_cpus = 0, pids_limit = 0;
  std::vector<Bind> binds;
  std::string network_mode = "bridge";
  std::vector<std::string> network_aliases;
  std::vector<network::PortMapping> port_bindings;  // host_port 0: chosen at start
  bool publish_all = false;
  bool readonly_rootfs = false, privileged = false, auto_remove = false, init = false;
  bool no_new_privileges = false, no_pivot = false;
  bool seccomp_unconfined = false;  // --security-opt seccomp=unconfined
  std::vector<std::string> cap_add, cap_drop;
  std::vector<oci::Rlimit> ulimits;
};

nlohmann::json ToJson(const ContainerConfig& c);
nlohmann::json ToJson(const HostConfig& h);
Result<ContainerConfig> ConfigFromJson(const nlohmann::json& j);
Result<HostConfig> HostConfigFromJson(const nlohmann::json& j);

// "-v /src:/dst:ro". kInvalidArgument for relative sources (named volumes are unsupported).
Result<Bind> ParseVolume(std::string_view v);
// "nofile=1024:2048" or "nofile=1024" -> RLIMIT_NOFILE. "unlimited"/-1 for infinity.
Result<oci::Rlimit> ParseUlimit(std::string_view v);
// "1.5" -> 1500000000 nano cpus.
Result<int64_t> ParseCpus(std::string_view v);
// KEY=VALUE lines; blank lines and # comments skipped; "KEY" alone looked up in `lookup_env`.
Result<std::vector<std::string>> ParseEnvFile(std::string_view text);
// Docker's effective capability list from the defaults, --cap-add and --cap-drop (ALL
// allowed, names with or without CAP_, any case). kInvalidArgument for an unknown name.
Result<std::vector<std::string>> EffectiveCapabilities(const std::vector<std::string>& add,
                                                       const std::vector<std::string>& drop,
                                                       bool privileged);
// Every capability name Linux defines (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE).
std::vector<std::string> AllCapabilities();

// Merges the image's config ("config" object of the image JSON: Env, Cmd, Entrypoint,
// WorkingDir, User, StopSignal, Labels) with the flags. `id` gives the default hostname (its
// first 12 characters). `host_hostname` is used with --network host. -p specs are parsed
// here; -P adds the image's ExposedPorts. kInvalidArgument for a bad --network value or
// ports with a network mode that has none of its own (container:).
// kInvalidArgument naming the flag on bad input; "no command specified" when nothing to run.
Result<std::pair<ContainerConfig, HostConfig>> MergeConfig(
    const nlohmann::json& image_config, const CreateOptions& opts, const std::string& id,
    const std::string& host_hostname, const std::vector<std::string>& env_file_lines);

// ContainerConfig -> the process's argv (entrypoint + cmd).
std::vector<std::string> ProcessArgs(const ContainerConfig& c);

// "name[:group]", "uid[:gid]": resolved against <rootfs>/etc/passwd and /etc/group read
// through `rootfs` (a rooted Dir). Supplementary groups are the groups listing the user.
// kNotFound "unable to find user NAME: no matching entries in passwd file".
// `home` (if given) receives the user's home directory for HOME: the passwd entry's, else
// /root for uid 0 and / for others. An empty spec is root.
Result<oci::User> ResolveUser(const Dir& rootfs, std::string_view spec,
                              std::string* home = nullptr);
// Same, from file contents (pure; empty strings for missing files).
Result<oci::User> ResolveUserFrom(std::string_view spec, std::string_view passwd,
                                  std::string_view group, std::string* home = nullptr);

// Where the per-container files live, for the binds over the init layer's placeholders.
struct SpecPaths {
  std::string rootfs;       // mounted overlay (overlay2/<id>/merged)
  std::string hostname, hosts, resolv_conf;   // containers/<id>/...
  std::string init_binary;  // shale-init on the host, for --init; "" otherwise
  std::string home;         // the user's home in the container, for HOME ("" -> "/")
};

// "TERM", "SIGTERM", "15" -> 15. kInvalidArgument otherwise.
Result<int> ParseSignal(std::string_view s);

// Sets each K=V of `more` in `env`, replacing an existing K in place (first position kept),
// appending new ones. Linear in the sizes of both.
void MergeEnv(std::vector<std::string>& env, const std::vector<std::string>& more);

// The OCI runtime spec for `id`: Docker's default mounts, the hosts/hostname/resolv.conf
// binds, -v binds, namespaces (pid, ipc, uts, mount, network unless host), capabilities,
// masked/readonly paths (none when privileged), resources, cgroups path "shale/<id>",
// rlimits. Pure.
Result<oci::RuntimeSpec> BuildSpec(const std::string& id, const ContainerConfig& c,
                                   const HostConfig& h, const oci::User& user,
                                   const SpecPaths& paths);

// Refuses a --ulimit whose hard value is above this process's hard limit (we cannot raise
// hard limits): "ulimit nofile: hard limit 1048576 exceeds this host's limit 524288; shale
// cannot raise hard limits".
Result<void> CheckUlimits(const std::vector<oci::Rlimit>& rlimits);

// The hosts file Docker writes for --network none (loopback lines). Bridge networks rewrite
// it with the container's address (network/network.h RenderHosts); with --network host the
// host's /etc/hosts is copied instead (by the caller).
std::string HostsFile(const std::string& hostname);
// The host's resolv.conf with loopback nameservers removed (they cannot be reached from a
// separate network namespace).
std::string FilterResolvConf(std::string_view host);

// Docker-like "adjective_surname".
std::string RandomName();
// [a-zA-Z0-9][a-zA-Z0-9_.-]+, as docker.
bool ValidName(std::string_view name);
// "container:web" -> "web"; "" for any other network mode.
std::string NetworkContainer(std::string_view network_mode);
// Whether the mode attaches the container to a CNI network (bridge or a user network).
bool UsesCni(std::string_view network_mode);

}  // namespace shale::container
