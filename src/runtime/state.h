// A container's lifecycle state on disk, for runtimes whose commands are separate processes
// (shale-runc create, then start, state, kill, delete).
//
// Layout of a state directory (<--root>/<id>, given by the caller):
//   state.json   this State, replaced atomically (temp file + rename)
//   config.json  the spec the container was created from (root.path absolute)
//   exec.fifo    exists while the container is `created`: its init is blocked reading it,
//                `start` writes one byte and removes it (runc's convention)
//   lock         flock, held by start, kill and delete
// The status is never stored: it is derived from the init process (pid plus its start time,
// so a recycled pid is not mistaken for it), the fifo and the paused mark.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runtime {

enum class Status { kCreating, kCreated, kRunning, kPaused, kStopped };
// "creating", "created", "running", "paused", "stopped" (the runtime spec's words).
std::string_view StatusName(Status s);

struct State {
  std::string id;
  pid_t pid = 0;                 // the init, in the pid namespace of whoever created it
  uint64_t pid_start = 0;        // its start time (/proc/<pid>/stat field 22)
  std::string bundle;
  std::string rootfs;
  std::string created;           // RFC 3339, UTC
  std::string cgroups_path;
  bool paused = false;
  std::string owner;             // "" (root)
  nlohmann::json annotations = nlohmann::json::object();
};

inline constexpr const char* kStateFile = "state.json";
inline constexpr const char* kSpecFile = "config.json";
inline constexpr const char* kExecFifo = "exec.fifo";

// Writes dir/name atomically (temp file + rename, no fsync: see state.cc).
Result<void> WriteStateFile(const std::string& dir, const char* name, std::string_view data);
Result<void> SaveState(const std::string& dir, const State& s);
// kNotFound "container <id> does not exist" when the directory or its state.json is missing;
// kCorrupt when state.json does not parse.
Result<State> LoadState(const std::string& dir);
Result<oci::RuntimeSpec> LoadSpec(const std::string& dir);

Status CurrentStatus(const std::string& dir, const State& s);
// The runtime-spec state: ociVersion, id, status, pid (0 once stopped), bundle, annotations;
// plus runc's rootfs, created and owner.
nlohmann::json OciState(const State& s, Status status);

// The start time of `pid` (field 22 of /proc/<pid>/stat), or 0 if it is gone or a zombie.
uint64_t ProcessStartTime(pid_t pid);

// Current UTC time as RFC 3339 with nanoseconds ("2024-01-02T03:04:05.123456789Z").
std::string NowRfc3339();

}  // namespace shale::runtime
