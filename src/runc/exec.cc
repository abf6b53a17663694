// exec: a new process in a created or running container.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runc/runc.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::runc {
namespace {

using nlohmann::json;

struct ExecFlags {
  std::string id, process_file, console_socket, pid_file, cwd, user;
  std::vector<std::string> env, args, caps;
  std::vector<uint32_t> additional_gids;
  bool detach = false, tty = false, no_new_privs = false;
  int preserve_fds = 0;
};

// The process to run: --process FILE (runtime-spec process JSON) as is, or the container's
// own process with the args and flags replaced.
Result<oci::Process> BuildProcess(const ExecFlags& f, const oci::RuntimeSpec& spec) {
  if (!f.process_file.empty()) {
    std::string text = TRY(ReadRegularFile(AbsPath(f.process_file), 4 << 20));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Error(Errc::kInvalidArgument, f.process_file + ": not JSON");
    oci::RuntimeSpec wrapped =
        TRY(oci::RuntimeSpecFromJson(json{{"process", j}}).Wrap("--process " + f.process_file));
    return wrapped.process;
  }
  if (f.args.empty())
    return Error(Errc::kInvalidArgument, "exec: give the command to run, or --process FILE");
  oci::Process p = spec.process;
  p.args = f.args;
  p.terminal = f.tty;
  p.console_height = p.console_width = 0;
  for (const std::string& e : f.env) p.env.push_back(e);
  if (!f.cwd.empty()) p.cwd = f.cwd;
  if (!f.user.empty()) {
    std::vector<std::string> ug = Split(f.user, ':');
    p.user.uid = static_cast<uint32_t>(TRY(ParseUint(ug[0], UINT32_MAX, "--user uid")));
    p.user.gid = ug.size() > 1 ? static_cast<uint32_t>(TRY(ParseUint(ug[1], UINT32_MAX, "--user gid")))
                               : 0;
    p.user.additional_gids.clear();
  }
  for (uint32_t gid : f.additional_gids) p.user.additional_gids.push_back(gid);
  for (const std::string& c : f.caps) {
    for (auto* set : {&p.capabilities.bounding, &p.capabilities.effective,
                      &p.capabilities.permitted})
      set->push_back(c);
  }
  if (f.no_new_privs) p.no_new_privileges = true;
  return p;
}

Result<int> ExecCmd(const Globals& g, const ExecFlags& f) {
  std::string dir = TRY(StateDir(g, f.id));
  runtime::State s = TRY(runtime::LoadState(dir));
  runtime::Status st = runtime::CurrentStatus(dir, s);
  if (st != runtime::Status::kCreated && st != runtime::Status::kRunning)
    return Error(Errc::kBusy, "cannot exec in container " + s.id + ": it is " +
                                  std::string(runtime::StatusName(st)));
  oci::RuntimeSpec spec = TRY(runtime::LoadSpec(dir));
  oci::Process p = TRY(BuildProcess(f, spec));
  if (p.terminal && f.console_socket.empty())
    return Error(Errc::kInvalidArgument, "exec --tty needs --console-socket");
  spec.process.no_new_privileges = p.no_new_privileges;
  spec.process.capabilities = p.capabilities;
  // The cgroup the container got (none when rootless without a delegated one).
  spec.linux.cgroups_path = s.cgroups_path;
  runtime::ExecOptions o;
  o.preserve_fds = f.preserve_fds;
  o.state = runtime::OciState(s, st);
  runtime::Started started = TRY(runtime::Exec(s.pid, spec, p, o).Wrap("exec in " + s.id));
  if (p.terminal) {
    TRY(SendConsole(f.console_socket, started.pty_master.get()));
    started.pty_master.reset();
  }
  if (!f.pid_file.empty()) TRY(WritePidFile(f.pid_file, started.pid));
  if (f.detach) return 0;
  return runtime::Wait(started.pid);
}

}  // namespace

void RegisterExec(CLI::App& app, Globals& g) {
  auto f = std::make_shared<ExecFlags>();
  CLI::App* c = app.add_subcommand("exec", "Run a new process inside a container");
  c->add_option("--process,-p", f->process_file, "The process as runtime-spec JSON");
  c->add_flag("--detach,-d", f->detach, "Do not wait for the process");
  c->add_flag("--tty,-t", f->tty, "Give the process a terminal (needs --console-socket)");
  c->add_option("--console-socket", f->console_socket, "Receives the terminal's master");
  c->add_option("--pid-file", f->pid_file, "Write the process's pid here");
  c->add_option("--cwd", f->cwd, "Working directory inside the container");
  c->add_option("--env,-e", f->env, "Extra environment variable K=V (repeatable)");
  c->add_option("--user,-u", f->user, "UID[:GID]");
  c->add_option("--additional-gids,-g", f->additional_gids, "Extra group ids");
  c->add_option("--cap,-c", f->caps, "Extra capability (repeatable)");
  c->add_flag("--no-new-privs", f->no_new_privs, "Set no_new_privileges");
  c->add_option("--preserve-fds", f->preserve_fds, "Pass this many fds from 3 on")
      ->check(CLI::Range(0, 1024));
  c->add_option("id", f->id, "Container id")->required();
  // Everything after the id is the command, its flags included (runc's way).
  c->prefix_command();
  c->footer("Usage: shale-runc exec [FLAGS] ID COMMAND [ARGS...]");
  c->callback([&g, f, c] {
    f->args = c->remaining();
    if (!f->args.empty() && f->args[0] == "--") f->args.erase(f->args.begin());
    g.action = [&g, f] { return ExecCmd(g, *f); };
  });
}

}  // namespace shale::runc
