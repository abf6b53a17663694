// Calling CNI plugins as the CNI specification (1.0.0) says: the plugin is an executable found
// in CNI_PATH, it gets its network configuration as JSON on stdin and the operation in its
// environment (CNI_COMMAND ADD|DEL|CHECK, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH),
// and answers with a result (ADD) or an error object {code, msg, details} on stdout.
//
// A network configuration list ("conflist") chains plugins: ADD runs them in order, each
// getting the previous one's result as `prevResult`; DEL runs them in reverse, each getting
// the result that ADD produced (so the caller must keep it: see attachment.h, the cache);
// CHECK runs them in order with that result.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace shale::network {

struct CniInvocation {
  std::string container_id;
  std::string netns;    // path of the network namespace file
  std::string ifname;   // "eth0"
  // Passed to plugins that declare the capability ({"portMappings": [...]}).
  nlohmann::json runtime_config = nlohmann::json::object();
};

// Directories searched for plugins: $CNI_PATH (colon-separated), then /usr/lib/cni and
// /opt/cni/bin.
std::vector<std::string> PluginDirs();
// kNotFound "CNI plugin \"bridge\" not found in /usr/lib/cni:/opt/cni/bin (install
// containernetworking-plugins)".
Result<std::string> FindPlugin(const std::string& type);

// The config one plugin of `conflist` receives: the plugin's object plus the list's name and
// cniVersion, runtimeConfig for the capabilities it declares, and prevResult (if not null).
// Pure.
nlohmann::json PluginConfig(const nlohmann::json& conflist, const nlohmann::json& plugin,
                            const nlohmann::json& runtime_config,
                            const nlohmann::json& prev_result);

// Runs one plugin. `command` is "ADD", "DEL" or "CHECK". Returns its stdout as JSON (null for
// an empty answer, as DEL and CHECK give). A plugin error becomes kIo with its msg and
// details: "CNI plugin bridge ADD (network bridge): failed to ...".
Result<nlohmann::json> ExecPlugin(const std::string& command, const nlohmann::json& config,
                                  const CniInvocation& inv);

// The whole list. AddList returns the last plugin's result; DelList is best effort (every
// plugin is called even if one fails; the first error is returned); CheckList stops at the
// first failure.
Result<nlohmann::json> AddList(const nlohmann::json& conflist, const CniInvocation& inv);
Result<void> DelList(const nlohmann::json& conflist, const nlohmann::json& cached_result,
                     const CniInvocation& inv);
Result<void> CheckList(const nlohmann::json& conflist, const nlohmann::json& cached_result,
                       const CniInvocation& inv);

}  // namespace shale::network
