// Container verbs: run, create, start, exec, ps, stop, kill, rm, logs, wait, inspect,
// commit, diff, export. Each parses, calls container::Manager, prints.
#include <unistd.h>

#include <fcntl.h>

#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/format_template.h"
#include "container/container.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/strings.h"
#include "container/trace.h"

namespace shale::cli {
namespace {

using container::Manager;
using nlohmann::json;

int Fail(std::string_view context, Error e, int status = 1) {
  return ReportError(context.empty() ? std::move(e) : std::move(e).Wrap(context), status);
}

Result<std::unique_ptr<Manager>> OpenManager(const Context& ctx) {
  return Manager::Open(ctx.root);
}

// Display width: UTF-8 continuation bytes take no column ("…" is one).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// docker's tabwriter: padding 3, last column unpadded.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], Width(r[i]));
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(w[i] + 3 - Width(r[i]), ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string Ellipsis(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, n - 1) + "\u2026";
}

// The flags shared by run and create.
void AddCreateFlags(CLI::App* sub, container::CreateOptions& o, std::string& entrypoint) {
  sub->add_option("--name", o.name, "Assign a name to the container");
  sub->add_flag("-i,--interactive", o.interactive, "Keep STDIN open");
  sub->add_flag("-t,--tty", o.tty, "Allocate a pseudo-TTY");
  sub->add_option("-e,--env", o.env, "Set environment variables (K=V, or K from this shell)")
      ->allow_extra_args(false);
  sub->add_option("--env-file", o.env_files, "Read environment variables from a file")
      ->allow_extra_args(false);
  sub->add_option("-w,--workdir", o.workdir, "Working directory inside the container");
  sub->add_option("-u,--user", o.user, "Username or UID (format: <name|uid>[:<group|gid>])");
  sub->add_option("-h,--hostname", o.hostname, "Container host name");
  sub->add_option("-v,--volume", o.volumes, "Bind mount SRC:DST[:ro]")->allow_extra_args(false);
  sub->add_flag("--read-only", o.read_only, "Mount the container's root filesystem read-only");
  sub->add_option("--network,--net", o.network,
                  "bridge (default), host, none, container:NAME|ID or a network's name");
  sub->add_option("--network-alias", o.network_aliases,
                  "Another name of the container on a user network")
      ->allow_extra_args(false);
  sub->add_option("-p,--publish", o.publish,
                  "Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp], ranges LOW-HIGH")
      ->allow_extra_args(false);
  sub->add_flag("-P,--publish-all", o.publish_all, "Publish the image's EXPOSEd ports on free ports");
  sub->add_option("-m,--memory", o.memory, "Memory limit (e.g. 32m)");
  sub->add_option("--cpus", o.cpus, "Number of CPUs (e.g. 1.5)");
  sub->add_option("--pids-limit", o.pids_limit, "Tune container pids limit (-1: unlimited)");
  sub->add_option("--entrypoint", entrypoint, "Overwrite the image's ENTRYPOINT");
  sub->add_flag("--init", o.init, "Run shale-init as pid 1 (forwards signals, reaps zombies)");
  sub->add_option("--cap-add", o.cap_add, "Add Linux capabilities (or ALL)")
      ->allow_extra_args(false);
  sub->add_option("--cap-drop", o.cap_drop, "Drop Linux capabilities (or ALL)")
      ->allow_extra_args(false);
  sub->add_flag("--privileged", o.privileged, "All capabilities, no masked paths");
  sub->add_option("--security-opt", o.security_opt, "no-new-privileges, seccomp=unconfined")
      ->allow_extra_args(false);
  sub->add_option("--ulimit", o.ulimits, "Ulimit options (name=soft[:hard])")
      ->allow_extra_args(false);
  sub->add_flag("--no-pivot", o.no_pivot, "chroot instead of pivot_root");
  sub->add_flag("--rm", o.auto_remove, "Remove the container when it exits");
  // IMAGE [COMMAND [ARG...]]: everything after the image belongs to the container.
  sub->prefix_command();
  sub->footer("Arguments: IMAGE [COMMAND] [ARG...]   (options go before IMAGE)");
}

// Splits remaining() into IMAGE and CMD; false if there is no image.
bool TakeImageAndCmd(CLI::App* sub, container::CreateOptions& o, const std::string& entrypoint,
                     bool entrypoint_set) {
  std::vector<std::string> rest = sub->remaining();
  if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
  if (rest.empty()) return false;
  if (rest[0].size() > 1 && rest[0][0] == '-') return false;
  o.image = rest[0];
  o.cmd.assign(rest.begin() + 1, rest.end());
  if (entrypoint_set) o.entrypoint = entrypoint;
  return true;
}

void AddRunCreate(CLI::App& app, Context& ctx, bool run) {
  struct Opts {
    container::CreateOptions o;
    std::string entrypoint;
    bool detach = false;
    std::string pull = "missing";
  };
  auto s = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(run ? "run" : "create",
                                 run ? "Create and run a new container from an image"
                                     : "Create a new container");
  sub->set_help_flag("--help", "Print this help message and exit");  // -h is --hostname
  AddCreateFlags(sub, s->o, s->entrypoint);
  if (run) sub->add_flag("-d,--detach", s->detach, "Run in the background and print its id");
  sub->add_option("--pull", s->pull, "Pull the image first: missing (default), always, never");
  CLI::Option* ep = sub->get_option("--entrypoint");
  sub->callback([&ctx, s, sub, ep, run] {
    ctx.action = [&ctx, s, sub, ep, run]() -> int {
      const char* verb = run ? "run" : "create";
      if (!TakeImageAndCmd(sub, s->o, s->entrypoint, ep->count() > 0)) {
        std::vector<std::string> rest = sub->remaining();
        if (!rest.empty() && rest[0].size() > 1 && rest[0][0] == '-')
          return Fail(verb, Error(Errc::kInvalidArgument, "unknown flag: " + rest[0] +
                                                              " (see shale " + verb + " --help)"),
                      125);
        return Fail(verb, Error(Errc::kInvalidArgument,
                                std::string("\"shale ") + verb +
                                    "\" requires at least 1 argument: IMAGE [COMMAND] [ARG...]"),
                    125);
      }
      // docker: with -it the input must be a terminal; a pipe would otherwise be fed to a
      // pty that never sees its EOF, and the run would hang after the input ends.
      if (run && !s->detach && s->o.tty && s->o.interactive && !isatty(STDIN_FILENO))
        return Fail("", Error(Errc::kInvalidArgument, "the input device is not a TTY"), 1);
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail(verb, std::move(mgr).error(), 125);
      if (int rc = PullForRun((*mgr)->images(), s->o.image, s->pull); rc != 0) return rc;
      container::TracePhase("run: --pull check");
      s->o.start_now = run;
      auto id = (*mgr)->Create(s->o);
      if (!id) return Fail(verb, std::move(id).error(), 125);
      if (!run) {
        std::cout << *id << "\n";
        return 0;
      }
      if (s->detach) {
        auto st = (*mgr)->StartDetached(*id);
        if (!st) return Fail("", st.error(), container::StartFailureStatus(st.error()));
        std::cout << *id << "\n";
        return 0;
      }
      return (*mgr)->RunAttached(*id);
    };
  });
}

void AddStart(CLI::App& app, Context& ctx) {
  struct Opts {
    std::vector<std::string> refs;
    bool attach = false, interactive = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("start", "Start one or more stopped containers");
  sub->add_flag("-a,--attach", o->attach, "Attach STDOUT/STDERR and forward signals");
  sub->add_flag("-i,--interactive", o->interactive, "Attach container's STDIN");
  sub->add_option("containers", o->refs, "CONTAINER...")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("start", std::move(mgr).error());
      int rc = 0;
      for (const std::string& ref : o->refs) {
        auto id = (*mgr)->Resolve(ref);
        if (!id) {
          rc = Fail("", std::move(id).error());
          continue;
        }
        if (o->attach || o->interactive) return (*mgr)->RunAttached(*id);
        auto st = (*mgr)->StartDetached(*id);
        if (!st) {
          rc = Fail("start " + ref, std::move(st).error());
          continue;
        }
        std::cout << ref << "\n";
      }
      return rc;
    };
  });
}

void AddExec(CLI::App& app, Context& ctx) {
  auto r = std::make_shared<container::ExecRequest>();
  auto* sub = app.add_subcommand("exec", "Execute a command in a running container");
  sub->add_flag("-i,--interactive", r->interactive, "Keep STDIN open");
  sub->add_flag("-t,--tty", r->tty, "Allocate a pseudo-TTY");
  sub->add_option("-e,--env", r->env, "Set environment variables")->allow_extra_args(false);
  sub->add_option("-w,--workdir", r->workdir, "Working directory inside the container");
  sub->add_option("-u,--user", r->user, "Username or UID (format: <name|uid>[:<group|gid>])");
  sub->prefix_command();
  sub->footer("Arguments: CONTAINER COMMAND [ARG...]   (options go before CONTAINER)");
  sub->callback([&ctx, r, sub] {
    ctx.action = [&ctx, r, sub]() -> int {
      std::vector<std::string> rest = sub->remaining();
      if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
      if (rest.size() < 2)
        return Fail("exec", Error(Errc::kInvalidArgument,
                                  "\"shale exec\" requires at least 2 arguments: CONTAINER "
                                  "COMMAND [ARG...]"),
                    125);
      if (r->tty && r->interactive && !isatty(STDIN_FILENO))
        return Fail("", Error(Errc::kInvalidArgument, "the input device is not a TTY"), 1);
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("exec", std::move(mgr).error(), 125);
      auto id = (*mgr)->Resolve(rest[0]);
      if (!id) return Fail("", std::move(id).error(), 1);
      r->args.assign(rest.begin() + 1, rest.end());
      auto st = (*mgr)->Exec(*id, *r);
      if (!st) {
        int code = container::StartFailureStatus(st.error());
        return Fail("exec " + rest[0], std::move(st).error(), code == 125 ? 126 : code);
      }
      return *st;
    };
  });
}

std::string QuotedCommand(const container::ContainerConfig& c, bool no_trunc) {
  std::string cmd = Join(container::ProcessArgs(c), " ");
  if (!no_trunc) cmd = Ellipsis(cmd, 20);
  return "\"" + cmd + "\"";
}

// "127.0.0.1:8080->80/tcp, 0.0.0.0:8443->443/tcp", docker's PORTS column.
std::string PortsText(Manager& mgr, const std::string& id) {
  std::vector<std::string> parts;
  if (auto a = mgr.networks().Load(id))
    for (const network::PortMapping& m : a->ports)
      parts.push_back((m.host_ip.empty() ? "0.0.0.0" : m.host_ip) + ":" +
                      std::to_string(m.host_port) + "->" + network::PortKey(m));
  return Join(parts, ", ");
}

void AddPs(CLI::App& app, Context& ctx) {
  struct Opts {
    bool all = false, quiet = false, no_trunc = false;
    std::string format;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("ps", "List containers");
  sub->add_flag("-a,--all", o->all, "Show all containers (default shows just running)");
  sub->add_flag("-q,--quiet", o->quiet, "Only display container IDs");
  sub->add_flag("--no-trunc", o->no_trunc, "Don't truncate output");
  sub->add_option("--format", o->format, "json: one JSON object per line");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("ps", std::move(mgr).error());
      auto list = (*mgr)->List(o->all);
      if (!list) return Fail("ps", std::move(list).error());
      int64_t now = NowUnixNanos();
      if (o->quiet) {
        for (const auto& s : *list)
          std::cout << (o->no_trunc ? s.record.id : s.record.id.substr(0, 12)) << "\n";
        return 0;
      }
      if (o->format == "json" || o->format == "{{json .}}") {
        for (const auto& s : *list) {
          json j = {{"ID", o->no_trunc ? s.record.id : s.record.id.substr(0, 12)},
                    {"Image", s.record.config.image},
                    {"Command", QuotedCommand(s.record.config, o->no_trunc)},
                    {"CreatedAt", FormatRfc3339Nano(s.record.created_ns)},
                    {"RunningFor", HumanAgo(s.record.created_ns / 1000000000, now / 1000000000)},
                    {"Status", container::StatusText(s.state, now)},
                    {"State", s.state.status},
                    {"Ports", PortsText(**mgr, s.record.id)},
                    {"Names", s.record.name}};
          std::cout << j.dump() << "\n";
        }
        return 0;
      }
      if (!o->format.empty())
        return Fail("ps", Error(Errc::kInvalidArgument,
                                "--format " + o->format + ": only \"json\" is supported"));
      std::vector<std::vector<std::string>> rows = {
          {"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"}};
      for (const auto& s : *list)
        rows.push_back({o->no_trunc ? s.record.id : s.record.id.substr(0, 12),
                        s.record.config.image, QuotedCommand(s.record.config, o->no_trunc),
                        HumanAgo(s.record.created_ns / 1000000000, now / 1000000000),
                        container::StatusText(s.state, now), PortsText(**mgr, s.record.id),
                        s.record.name});
      PrintTable(rows);
      return 0;
    };
  });
}

// Verbs that take CONTAINER... and do one thing to each, printing its name as docker does.
void AddEach(CLI::App& app, Context& ctx, const char* name, const char* help,
             std::function<void(CLI::App*)> flags,
             std::function<Result<void>(Manager&, const std::string& id, const std::string& ref)>
                 fn) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* sub = app.add_subcommand(name, help);
  if (flags) flags(sub);
  sub->add_option("containers", *refs, "CONTAINER...")->required();
  sub->callback([&ctx, refs, fn, name] {
    ctx.action = [&ctx, refs, fn, name]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail(name, std::move(mgr).error());
      int rc = 0;
      for (const std::string& ref : *refs) {
        auto id = (*mgr)->Resolve(ref);
        if (!id) {
          rc = Fail("", std::move(id).error());
          continue;
        }
        if (auto r = fn(**mgr, *id, ref); !r) rc = Fail(std::string(name) + " " + ref, std::move(r).error());
      }
      return rc;
    };
  });
}

void AddStopKillRmWait(CLI::App& app, Context& ctx) {
  auto timeout = std::make_shared<int>(10);
  if (ctx.Wants("stop")) AddEach(
      app, ctx, "stop", "Stop one or more running containers",
      [timeout](CLI::App* s) { s->add_option("-t,--time", *timeout, "Seconds to wait before killing"); },
      [timeout](Manager& m, const std::string& id, const std::string& ref) -> Result<void> {
        TRY(m.Stop(id, *timeout));
        std::cout << ref << "\n";
        return Ok();
      });
  auto signal = std::make_shared<std::string>("KILL");
  if (ctx.Wants("kill")) AddEach(
      app, ctx, "kill", "Kill one or more running containers",
      [signal](CLI::App* s) { s->add_option("-s,--signal", *signal, "Signal to send"); },
      [signal](Manager& m, const std::string& id, const std::string& ref) -> Result<void> {
        int sig = TRY(container::ParseSignal(*signal));
        TRY(m.Kill(id, sig));
        std::cout << ref << "\n";
        return Ok();
      });
  auto force = std::make_shared<bool>(false);
  if (ctx.Wants("rm")) AddEach(
      app, ctx, "rm", "Remove one or more containers",
      [force](CLI::App* s) { s->add_flag("-f,--force", *force, "Force the removal of a running container"); },
      [force](Manager& m, const std::string& id, const std::string& ref) -> Result<void> {
        TRY(m.Remove(id, *force));
        std::cout << ref << "\n";
        return Ok();
      });
  if (ctx.Wants("wait")) AddEach(app, ctx, "wait", "Block until containers stop, then print their exit codes", nullptr,
          [](Manager& m, const std::string& id, const std::string&) -> Result<void> {
            int code = TRY(m.Wait(id));
            std::cout << code << "\n";
            return Ok();
          });
}

void AddLogs(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string ref;
    bool follow = false;
    std::string tail = "all";
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("logs", "Fetch the logs of a container");
  sub->add_flag("-f,--follow", o->follow, "Follow log output");
  sub->add_option("-n,--tail", o->tail, "Number of lines to show from the end (or all)");
  sub->add_option("container", o->ref, "CONTAINER")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("logs", std::move(mgr).error());
      auto id = (*mgr)->Resolve(o->ref);
      if (!id) return Fail("", std::move(id).error());
      int64_t tail = -1;
      if (o->tail != "all") {
        if (o->tail.empty() || o->tail.find_first_not_of("0123456789") != std::string::npos)
          return Fail("logs", Error(Errc::kInvalidArgument, "--tail " + o->tail + ": use a number or all"));
        auto n = ParseInt(o->tail, 0, INT64_MAX, "--tail");
        if (!n) return Fail("logs", std::move(n).error());
        tail = *n;
      }
      auto r = (*mgr)->Logs(*id, o->follow, tail);
      if (!r) return Fail("logs " + o->ref, std::move(r).error());
      return 0;
    };
  });
}

void AddInspect(CLI::App& app, Context& ctx) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* sub = app.add_subcommand("inspect", "Low-level information on containers and images (JSON)");
  sub->add_option("objects", *refs, "CONTAINER or IMAGE...")->required();
  auto format = std::make_shared<std::string>();
  sub->add_option("-f,--format", *format,
                  "Print each object through a template: {{.State.Pid}}, {{json .Config}}");
  sub->callback([&ctx, refs, format] {
    ctx.action = [&ctx, refs, format]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("inspect", std::move(mgr).error());
      json out = json::array();
      int rc = 0;
      for (const std::string& ref : *refs) {
        auto id = (*mgr)->Resolve(ref);
        if (id) {
          auto j = (*mgr)->Inspect(*id);
          if (!j) {
            rc = Fail("inspect " + ref, std::move(j).error());
            continue;
          }
          out.push_back(std::move(*j));
          continue;
        }
        // A prefix that matches several containers is ambiguous, not absent: say so rather
        // than fall through to an image that happens to match too.
        if (id.error().code() != Errc::kNotFound) {
          rc = Fail("inspect " + ref, std::move(id).error());
          continue;
        }
        auto img = (*mgr)->images().Resolve(ref);
        if (img) {
          auto j = (*mgr)->images().InspectJson(*img);
          if (!j) {
            rc = Fail("inspect " + ref, std::move(j).error());
            continue;
          }
          out.push_back(std::move(*j));
          continue;
        }
        if (img.error().code() != Errc::kNotFound) {
          rc = Fail("inspect " + ref, std::move(img).error());
          continue;
        }
        rc = Fail("", Error(Errc::kNotFound, "No such object: " + ref));
      }
      if (format->empty()) {
        std::cout << out.dump(4) << "\n";
        return rc;
      }
      for (const json& obj : out) {
        auto line = RenderTemplate(*format, obj);
        if (!line) return Fail("inspect", std::move(line).error());
        std::cout << *line << "\n";
      }
      return rc;
    };
  });
}

void AddCommit(CLI::App& app, Context& ctx) {
  struct Opts {
    container::CommitRequest r;
    std::string ref;
    std::string pause = "true";
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("commit", "Create a new image from a container's changes");
  sub->add_option("-m,--message", o->r.message, "Commit message");
  sub->add_option("-a,--author", o->r.author, "Author (e.g. \"Jane <jane@example.com>\")");
  sub->add_option("-c,--change", o->r.changes, "Apply a Dockerfile instruction")
      ->allow_extra_args(false);
  sub->add_option("-p,--pause", o->pause, "Pause the container during commit (true|false)");
  sub->add_flag("--reproducible", o->r.reproducible,
                "Clamp mtimes (to SOURCE_DATE_EPOCH, else the base image's creation time)");
  sub->add_option("container", o->ref, "CONTAINER")->required();
  sub->add_option("repository", o->r.tag, "REPOSITORY[:TAG]");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      if (o->pause != "true" && o->pause != "false")
        return Fail("commit", Error(Errc::kInvalidArgument, "--pause must be true or false"));
      o->r.pause = o->pause == "true";
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("commit", std::move(mgr).error());
      auto id = (*mgr)->Resolve(o->ref);
      if (!id) return Fail("", std::move(id).error());
      auto img = (*mgr)->Commit(*id, o->r);
      if (!img) return Fail("", std::move(img).error());
      std::cout << img->id.str() << "\n";
      return 0;
    };
  });
}

void AddDiff(CLI::App& app, Context& ctx) {
  auto ref = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("diff", "Inspect changes to files on a container's filesystem");
  sub->add_option("container", *ref, "CONTAINER")->required();
  sub->callback([&ctx, ref] {
    ctx.action = [&ctx, ref]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("diff", std::move(mgr).error());
      auto id = (*mgr)->Resolve(*ref);
      if (!id) return Fail("", std::move(id).error());
      auto ch = (*mgr)->Diff(*id);
      if (!ch) return Fail("diff " + *ref, std::move(ch).error());
      for (const auto& c : *ch) std::cout << c.kind << " " << c.path << "\n";
      return 0;
    };
  });
}

void AddExport(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string ref, output;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("export", "Export a container's filesystem as a tar archive");
  sub->add_option("-o,--output", o->output, "Write to a file, instead of STDOUT");
  sub->add_option("container", o->ref, "CONTAINER")->required();
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("export", std::move(mgr).error());
      auto id = (*mgr)->Resolve(o->ref);
      if (!id) return Fail("", std::move(id).error());
      UniqueFd file;
      int fd = 1;
      if (!o->output.empty()) {
        file = UniqueFd(::open(o->output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!file) return Fail("export", Error::FromErrno(errno, "open " + o->output));
        fd = file.get();
      } else if (isatty(1)) {
        return Fail("export", Error(Errc::kInvalidArgument,
                                    "cowardly refusing to write a tar to a terminal: use -o "
                                    "FILE or redirect stdout"));
      }
      auto r = (*mgr)->Export(*id, fd);
      if (!r) {
        if (!o->output.empty()) unlink(o->output.c_str());
        return Fail("", std::move(r).error());
      }
      return 0;
    };
  });
}

}  // namespace

void AddPort(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string ref, port;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("port", "List port mappings of a container");
  sub->add_option("container", o->ref, "CONTAINER")->required();
  sub->add_option("port", o->port, "PRIVATE_PORT[/PROTO]: only this one");
  sub->callback([&ctx, o] {
    ctx.action = [&ctx, o]() -> int {
      auto mgr = OpenManager(ctx);
      if (!mgr) return Fail("port", std::move(mgr).error());
      auto id = (*mgr)->Resolve(o->ref);
      if (!id) return Fail("port", std::move(id).error());
      std::string want = o->port;
      if (!want.empty() && want.find('/') == std::string::npos) want += "/tcp";
      bool any = false;
      if (auto a = (*mgr)->networks().Load(*id))
        for (const network::PortMapping& m : a->ports) {
          if (!want.empty() && network::PortKey(m) != want) continue;
          std::string host = (m.host_ip.empty() ? "0.0.0.0" : m.host_ip) + ":" +
                             std::to_string(m.host_port);
          std::cout << (want.empty() ? network::PortKey(m) + " -> " : "") << host << "\n";
          any = true;
        }
      if (!want.empty() && !any)
        return Fail("port", Error(Errc::kNotFound, "no public port '" + want +
                                                       "' published for " + o->ref));
      return 0;
    };
  });
}

void RegisterContainerCommands(CLI::App& app, Context& ctx) {
  if (ctx.Wants("port")) AddPort(app, ctx);
  if (ctx.Wants("run")) AddRunCreate(app, ctx, true);
  if (ctx.Wants("create")) AddRunCreate(app, ctx, false);
  if (ctx.Wants("start")) AddStart(app, ctx);
  if (ctx.Wants("exec")) AddExec(app, ctx);
  if (ctx.Wants("ps")) AddPs(app, ctx);
  AddStopKillRmWait(app, ctx);
  if (ctx.Wants("logs")) AddLogs(app, ctx);
  if (ctx.Wants("inspect")) AddInspect(app, ctx);
  if (ctx.Wants("commit")) AddCommit(app, ctx);
  if (ctx.Wants("diff")) AddDiff(app, ctx);
  if (ctx.Wants("export")) AddExport(app, ctx);
}

}  // namespace shale::cli
