// create, run, start, state, kill, delete, pause, resume, ps, list, update.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "runc/runc.h"
#include "runtime/cgroup/cgroup_manager.h"
#include "runtime/rootless.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "util/fs.h"

namespace shale::runc {
namespace {

using nlohmann::json;

struct CreateFlags {
  std::string id, bundle = ".", console_socket, pid_file;
  bool no_pivot = false, no_new_keyring = false, detach = false, keep = false;
  int preserve_fds = 0;
};

void AddCreateFlags(CLI::App* c, CreateFlags& f) {
  c->add_option("--bundle,-b", f.bundle, "Bundle directory (config.json and the rootfs)")
      ->capture_default_str();
  c->add_option("--console-socket", f.console_socket,
                "Unix socket that receives the terminal's master (process.terminal)");
  c->add_option("--pid-file", f.pid_file, "Write the init's pid here");
  c->add_flag("--no-pivot", f.no_pivot, "chroot instead of pivot_root (rootfs on a ramdisk)");
  c->add_flag("--no-new-keyring", f.no_new_keyring,
              "Accepted for runc compatibility: shale-runc never makes a session keyring");
  c->add_option("--preserve-fds", f.preserve_fds, "Pass this many fds from 3 on into the "
                                                  "container")
      ->check(CLI::Range(0, 1024));
  c->add_option("id", f.id, "Container id")->required();
}

// Everything `create` and `run` share: the spec, the state directory, Create, the terminal.
Result<runtime::Created> CreateFromFlags(const Globals& g, const CreateFlags& f) {
  std::string dir = TRY(StateDir(g, f.id));
  std::string bundle = AbsPath(f.bundle);
  oci::RuntimeSpec spec = TRY(LoadBundleSpec(bundle));
  if (spec.process.terminal && f.console_socket.empty())
    return Error(Errc::kInvalidArgument,
                 "process.terminal is set: pass --console-socket to receive the terminal");
  // runc's default: a cgroup named after the container, so ps, pause and kill --all work.
  if (spec.linux.cgroups_path.empty()) spec.linux.cgroups_path = "/shale-runc/" + f.id;
  int listen = ListenFds();
  if (listen) {
    spec.process.env.push_back("LISTEN_FDS=" + std::to_string(listen));
    spec.process.env.push_back("LISTEN_PID=1");
  }
  TRY(MakeDirsAbs(g.root, 0700));
  runtime::RunOptions o;
  o.container_id = f.id;
  o.bundle = bundle;
  o.state_dir = dir;
  o.no_pivot = f.no_pivot;
  o.die_with_parent = false;
  o.preserve_fds = f.preserve_fds + listen;
  o.rootless = g.rootless_on;
  runtime::Created c = TRY(runtime::Create(spec, o));
  if (spec.process.terminal) {
    TRY(SendConsole(f.console_socket, c.pty_master().get()));
    c.pty_master().reset();
  }
  if (!f.pid_file.empty()) TRY(WritePidFile(f.pid_file, c.pid()));
  return c;
}

// runc run in the foreground: signals to us go to the container's init.
pid_t g_forward_pid = 0;
void Forward(int sig) {
  if (g_forward_pid > 0) kill(g_forward_pid, sig);
}

Result<int> RunCmd(const Globals& g, const CreateFlags& f) {
  runtime::Created c = TRY(CreateFromFlags(g, f));
  std::string dir = TRY(StateDir(g, f.id));
  runtime::Started s = TRY(std::move(c).Start());
  if (f.detach) return 0;
  g_forward_pid = s.pid;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) signal(sig, Forward);
  int status = TRY(runtime::Wait(s.pid));
  g_forward_pid = 0;
  if (!f.keep) TRY(runtime::Delete(dir, /*force=*/true));
  return status;
}

Result<runtime::State> Load(const Globals& g, const std::string& id, std::string* dir_out) {
  std::string dir = TRY(StateDir(g, id));
  if (dir_out) *dir_out = dir;
  return runtime::LoadState(dir);
}

std::string ReadComm(pid_t p) {
  auto c = ReadFile("/proc/" + std::to_string(p) + "/cmdline");
  if (!c || c->empty()) return "";
  std::string s = *c;
  for (char& ch : s)
    if (ch == '\0') ch = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

void RegisterLifecycle(CLI::App& app, Globals& g) {
  auto cf = std::make_shared<CreateFlags>();
  CLI::App* create = app.add_subcommand("create", "Create a container (blocked before its "
                                                  "process runs; start runs it)");
  AddCreateFlags(create, *cf);
  create->callback([&g, cf] {
    g.action = [&g, cf]() -> Result<int> {
      runtime::Created c = TRY(CreateFromFlags(g, *cf));
      c.Detach();
      return 0;
    };
  });

  auto rf = std::make_shared<CreateFlags>();
  CLI::App* run = app.add_subcommand("run", "Create and start a container; without --detach "
                                            "wait for it, delete it, exit with its status");
  AddCreateFlags(run, *rf);
  run->add_flag("--detach,-d", rf->detach, "Return once the container runs");
  run->add_flag("--keep", rf->keep, "Do not delete the container after it exits");
  run->callback([&g, rf] { g.action = [&g, rf] { return RunCmd(g, *rf); }; });

  auto id = std::make_shared<std::string>();
  CLI::App* start = app.add_subcommand("start", "Run the process of a created container");
  start->add_option("id", *id, "Container id")->required();
  start->callback([&g, id] {
    g.action = [&g, id]() -> Result<int> {
      TRY(runtime::Start(TRY(StateDir(g, *id))));
      return 0;
    };
  });

  CLI::App* state = app.add_subcommand("state", "Print a container's state (runtime-spec JSON)");
  state->add_option("id", *id, "Container id")->required();
  state->callback([&g, id] {
    g.action = [&g, id]() -> Result<int> {
      std::string dir;
      runtime::State s = TRY(Load(g, *id, &dir));
      std::cout << runtime::OciState(s, runtime::CurrentStatus(dir, s)).dump(2) << "\n";
      return 0;
    };
  });

  auto kill_all = std::make_shared<bool>(false);
  auto sig = std::make_shared<std::string>("SIGTERM");
  CLI::App* kill = app.add_subcommand("kill", "Send a signal (default SIGTERM) to the init");
  kill->add_flag("--all,-a", *kill_all, "Signal every process of the container");
  kill->add_option("id", *id, "Container id")->required();
  kill->add_option("signal", *sig, "Signal name or number");
  kill->callback([&g, id, kill_all, sig] {
    g.action = [&g, id, kill_all, sig]() -> Result<int> {
      int s = TRY(ParseSignal(*sig));
      TRY(runtime::Kill(TRY(StateDir(g, *id)), s, *kill_all));
      return 0;
    };
  });

  auto force = std::make_shared<bool>(false);
  CLI::App* del = app.add_subcommand("delete", "Delete a stopped (or created) container");
  del->add_flag("--force,-f", *force, "Kill it first if it is running");
  del->add_option("id", *id, "Container id")->required();
  del->callback([&g, id, force] {
    g.action = [&g, id, force]() -> Result<int> {
      std::string dir = TRY(StateDir(g, *id));
      auto r = runtime::Delete(dir, *force);
      if (!r && r.error().code() == Errc::kNotFound && *force) {
        (void)RemoveTreeAbs(dir);  // an aborted create may have left a directory
        return 0;
      }
      TRY(std::move(r));
      return 0;
    };
  });

  for (bool pause : {true, false}) {
    CLI::App* p = app.add_subcommand(pause ? "pause" : "resume",
                                     pause ? "Freeze every process of a container"
                                           : "Thaw a paused container");
    p->add_option("id", *id, "Container id")->required();
    p->callback([&g, id, pause] {
      g.action = [&g, id, pause]() -> Result<int> {
        TRY(runtime::Pause(TRY(StateDir(g, *id)), pause));
        return 0;
      };
    });
  }

  auto format = std::make_shared<std::string>("table");
  CLI::App* ps = app.add_subcommand("ps", "List the processes of a container");
  ps->add_option("--format,-f", *format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  ps->add_option("id", *id, "Container id")->required();
  ps->callback([&g, id, format] {
    g.action = [&g, id, format]() -> Result<int> {
      runtime::State s = TRY(Load(g, *id, nullptr));
      std::vector<pid_t> pids;
      if (!s.cgroups_path.empty()) pids = TRY(runtime::CgroupPids(s.cgroups_path));
      else pids = runtime::ProcessPids(s.pid, s.pid_start);  // rootless: no cgroup
      if (*format == "json") {
        std::cout << json(pids).dump() << "\n";
        return 0;
      }
      printf("%-8s %s\n", "PID", "CMD");
      for (pid_t p : pids) printf("%-8d %s\n", p, ReadComm(p).c_str());
      return 0;
    };
  });

  auto lformat = std::make_shared<std::string>("table");
  auto quiet = std::make_shared<bool>(false);
  CLI::App* list = app.add_subcommand("list", "List the containers under --root");
  list->alias("ls");
  list->add_option("--format,-f", *lformat, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  list->add_flag("--quiet,-q", *quiet, "Print only the ids");
  list->callback([&g, lformat, quiet] {
    g.action = [&g, lformat, quiet]() -> Result<int> {
      if (g.root.empty()) TRY(DefaultRoot(geteuid(), getenv("XDG_RUNTIME_DIR")));
      auto names = ListDir(g.root);
      json all = json::array();
      if (*lformat == "table" && !*quiet)
        printf("%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
               "OWNER");
      for (const std::string& n : names ? *names : std::vector<std::string>{}) {
        std::string dir = g.root + "/" + n;
        auto s = runtime::LoadState(dir);
        if (!s) continue;
        json j = runtime::OciState(*s, runtime::CurrentStatus(dir, *s));
        if (*quiet) {
          printf("%s\n", s->id.c_str());
        } else if (*lformat == "table") {
          printf("%-12s %-8d %-10s %-40s %-30s %s\n", s->id.c_str(), j["pid"].get<int>(),
                 j["status"].get<std::string>().c_str(), s->bundle.c_str(), s->created.c_str(),
                 s->owner.empty() ? "root" : s->owner.c_str());
        }
        all.push_back(std::move(j));
      }
      if (*lformat == "json" && !*quiet) std::cout << all.dump() << "\n";
      return 0;
    };
  });

  auto stats = std::make_shared<bool>(false);
  auto interval = std::make_shared<int>(5);
  CLI::App* events = app.add_subcommand("events", "Print a container's resource use as JSON "
                                                  "(--stats: once; else every --interval s)");
  events->add_flag("--stats", *stats, "Print the figures once and exit");
  events->add_option("--interval", *interval, "Seconds between two lines")
      ->check(CLI::Range(1, 3600));
  events->add_option("id", *id, "Container id")->required();
  events->callback([&g, id, stats, interval] {
    g.action = [&g, id, stats, interval]() -> Result<int> {
      std::string dir;
      runtime::State s = TRY(Load(g, *id, &dir));
      do {
        if (runtime::CurrentStatus(dir, s) == runtime::Status::kStopped && !*stats) break;
        json data = json::object();
        if (!s.cgroups_path.empty()) {
          auto pids = runtime::CgroupPids(s.cgroups_path);
          if (pids) data["pids"] = {{"current", pids->size()}};
          auto cg = runtime::cgroup::NewCgroupManager(s.cgroups_path);
          for (const std::string& d : cg ? (*cg)->Dirs() : std::vector<std::string>{}) {
            for (const char* f : {"/memory.usage_in_bytes", "/memory.current"}) {
              auto v = ReadFile(d + f);
              uint64_t n = 0;
              if (v && std::from_chars(v->data(), v->data() + v->size(), n).ec == std::errc())
                data["memory"] = {{"usage", {{"usage", n}}}};
            }
          }
        }
        std::cout << json{{"type", "stats"}, {"id", s.id}, {"data", data}}.dump() << std::endl;
        if (*stats) break;
        sleep(static_cast<unsigned>(*interval));
      } while (true);
      return 0;
    };
  });

  auto resources = std::make_shared<std::string>();
  CLI::App* update = app.add_subcommand("update", "Change the cgroup limits of a container");
  update->add_option("--resources,-r", *resources,
                     "File with linux.resources JSON, - for stdin")->required();
  update->add_option("id", *id, "Container id")->required();
  update->callback([&g, id, resources] {
    g.action = [&g, id, resources]() -> Result<int> {
      runtime::State s = TRY(Load(g, *id, nullptr));
      std::string text = *resources == "-" ? TRY(ReadAll(0, "stdin"))
                                            : TRY(ReadRegularFile(*resources, 1 << 20));
      json r = json::parse(text, nullptr, false);
      if (r.is_discarded()) return Error(Errc::kInvalidArgument, "--resources: not valid JSON");
      oci::RuntimeSpec wrapped =
          TRY(oci::RuntimeSpecFromJson(json{{"linux", {{"resources", r}}}}).Wrap("--resources"));
      if (s.cgroups_path.empty())
        return Error(Errc::kUnsupported, "container " + s.id + " has no cgroup");
      auto cg = TRY(runtime::cgroup::NewCgroupManager(s.cgroups_path));
      TRY(cg->Apply(wrapped.linux.resources).Wrap("update " + s.id));
      return 0;
    };
  });
}

}  // namespace shale::runc
