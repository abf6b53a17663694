// What every verb receives: global options and the chosen verb's action.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "util/error.h"

namespace shale::image {
class ImageStore;
}

namespace shale::cli {

struct Context {
  std::string root;        // --root / SHALE_ROOT / /var/lib/shale
  std::string run_root;    // /run/shale (pids, locks of running things)
  bool debug = false;
  // The verb named on the command line, found before parsing: only it is registered (the
  // whole tree costs ~1 ms on every command, twice the rest of the parse). "" = all verbs
  // (help, version, an unknown verb).
  std::string only_verb;
  bool Wants(std::string_view verb) const { return only_verb.empty() || only_verb == verb; }
  // Set by the chosen verb's callback; Main runs it after parsing. Returns the exit status.
  std::function<int()> action;
};

// Prints "shale: <message>" once and returns `status` (docker uses 125 for its own errors).
int ReportError(const Error& e, int status = 1);

// Verb groups; each lives in its own files and adds subcommands to `app`.
// image_commands.cc: import, load, save, images, tag, rmi, history, mount, umount
void RegisterImageCommands(CLI::App& app, Context& ctx);
// container_commands.cc: run, create, start, exec, ps, stop, kill, rm, logs, wait, inspect,
// commit, diff, export, port
void RegisterContainerCommands(CLI::App& app, Context& ctx);
// network_commands.cc: network create, ls, inspect, rm, prune, connect, disconnect
void RegisterNetworkCommands(CLI::App& app, Context& ctx);
// registry_commands.cc: pull, push, login, logout
void RegisterRegistryCommands(CLI::App& app, Context& ctx);
// build_commands.cc: build
void RegisterBuildCommands(CLI::App& app, Context& ctx);
// prune_commands.cc: container prune, image prune, system prune
void RegisterPruneCommands(CLI::App& app, Context& ctx);
// run/create --pull missing|always|never: pulls `image` first as the policy says. Returns 0
// to go on, else the exit status (125) after printing the error. `store` is the one the
// command goes on with (opened once, not twice).
int PullForRun(image::ImageStore& store, const std::string& image, const std::string& policy);

}  // namespace shale::cli
