// OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each runs as a child process
// with the container's state JSON on its stdin, and is killed when it outlives its timeout.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runtime {

// Runs `hook` and waits for it. kInvalidArgument when its path is not absolute; kNotFound or
// kPermission when it cannot be executed; kInternal when it exits non-zero or is killed, and
// kCancelled after `hook.timeout` seconds (the hook is SIGKILLed). `phase` ("prestart") names
// it in errors. Fork-safe: usable from the container's init before its execve.
Result<void> RunHook(const oci::Hook& hook, std::string_view state_json, std::string_view phase);

// RunHook for each in order; stops at the first failure.
Result<void> RunHooks(const std::vector<oci::Hook>& hooks, std::string_view state_json,
                      std::string_view phase);

}  // namespace shale::runtime
