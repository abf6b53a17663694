// Container records: create, resolve, state, list, remove, inspect.
#include "container/container.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "container/files.h"
#include "container/trace.h"
#include "runtime/runtime.h"
#include "sys/mount.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::container {
namespace {

using nlohmann::json;

constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";

std::string TimeOrZero(int64_t ns) { return ns ? FormatRfc3339Nano(ns) : kZeroTime; }

json StateToJson(const State& s) {
  return {{"Status", s.status},         {"Pid", s.pid},
          {"MonitorPid", s.monitor_pid}, {"MonitorStart", s.monitor_start},
          {"ExitCode", s.exit_code},     {"OOMKilled", s.oom_killed},
          {"Error", s.error},            {"StartedAt", s.started_ns},
          {"FinishedAt", s.finished_ns}};
}

State StateFromJson(const json& j) {
  State s;
  s.status = j.value("Status", "created");
  s.pid = j.value("Pid", 0);
  s.monitor_pid = j.value("MonitorPid", 0);
  s.monitor_start = j.value("MonitorStart", uint64_t{0});
  s.exit_code = j.value("ExitCode", 0);
  s.oom_killed = j.value("OOMKilled", false);
  s.error = j.value("Error", "");
  s.started_ns = j.value("StartedAt", int64_t{0});
  s.finished_ns = j.value("FinishedAt", int64_t{0});
  return s;
}

json RecordToJson(const Record& r) {
  return {{"Id", r.id},
          {"Name", "/" + r.name},
          {"Created", r.created_ns},
          {"Image", r.image_id},
          {"Config", ToJson(r.config)},
          {"HostConfig", ToJson(r.host)}};
}

Result<Record> RecordFromJson(const json& j) {
  Record r;
  try {
    r.id = j.at("Id").get<std::string>();
    r.name = j.value("Name", "");
    if (StartsWith(r.name, "/")) r.name.erase(0, 1);
    r.created_ns = j.value("Created", int64_t{0});
    r.image_id = j.value("Image", "");
  } catch (const json::exception& e) {
    return Error(Errc::kCorrupt, std::string("config.v2.json: ") + e.what());
  }
  r.config = TRY(ConfigFromJson(j.value("Config", json::object())));
  r.host = TRY(HostConfigFromJson(j.value("HostConfig", json::object())));
  return r;
}

bool MonitorAlive(const State& s) {
  if (s.monitor_pid <= 0) return false;
  uint64_t st = ProcessStartTime(s.monitor_pid);
  return st != 0 && st == s.monitor_start;
}

std::string HostHostname() {
  char h[256] = {0};
  gethostname(h, sizeof(h) - 1);
  return h;
}

// Undoes a half-made container unless released.
class CreateGuard {
 public:
  CreateGuard(Manager* m, std::string id) : m_(m), id_(std::move(id)) {}
  ~CreateGuard() {
    if (m_) (void)cleanup_();
  }
  std::function<Result<void>()> cleanup_;
  void Release() { m_ = nullptr; }

 private:
  Manager* m_;
  std::string id_;
};

}  // namespace

uint64_t ProcessStartTime(pid_t pid) {
  auto s = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!s) return 0;
  size_t rp = s->rfind(')');
  if (rp == std::string::npos) return 0;
  // Fields after the comm: state is field 3; starttime is field 22.
  std::vector<std::string> f = Split(std::string_view(*s).substr(rp + 2), ' ');
  if (f.size() < 20) return 0;
  if (f[0] == "Z" || f[0] == "X") return 0;  // a zombie monitor is a dead one
  return std::strtoull(f[19].c_str(), nullptr, 10);
}

int StartFailureStatus(const Error& e) {
  if (e.code() == Errc::kNotFound) return 127;
  if (e.code() == Errc::kPermission) return 126;
  return 125;
}

std::string HumanDuration(int64_t s) {
  auto plural = [](int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
  };
  if (s < 1) return "Less than a second";
  if (s == 1) return "1 second";
  if (s < 60) return plural(s, "second");
  int64_t m = s / 60;
  if (m == 1) return "About a minute";
  if (m < 60) return plural(m, "minute");
  int64_t h = s / 3600;
  if (h == 1) return "About an hour";
  if (h < 48) return plural(h, "hour");
  if (h < 24 * 7 * 2) return plural(h / 24, "day");
  if (h < 24 * 30 * 2) return plural(h / 24 / 7, "week");
  if (h < 24 * 365 * 2) return plural(h / 24 / 30, "month");
  return plural(h / 24 / 365, "year");
}

std::string StatusText(const State& s, int64_t now_ns) {
  if (s.status == "running" || s.status == "paused") {
    std::string t = "Up " + HumanDuration((now_ns - s.started_ns) / 1000000000);
    return s.status == "paused" ? t + " (Paused)" : t;
  }
  if (s.status == "exited") {
    if (!s.finished_ns) return "Exited (" + std::to_string(s.exit_code) + ")";
    return "Exited (" + std::to_string(s.exit_code) + ") " +
           HumanDuration((now_ns - s.finished_ns) / 1000000000) + " ago";
  }
  return "Created";
}


Result<std::unique_ptr<Manager>> Manager::Open(const std::string& root) {
  auto images = TRY(image::ImageStore::Open(root));
  TRY(MakeDirsAbs(root + "/containers/.names", 0700));
  TracePhase("open the store");
  return std::unique_ptr<Manager>(new Manager(root, std::move(images)));
}

std::string Manager::ContainerDir(const std::string& id) const {
  return root_ + "/containers/" + id;
}

Result<void> Manager::SaveState(const std::string& id, const State& s) {
  return WriteJsonFast(ContainerDir(id) + "/state.json", StateToJson(s));
}

Result<State> Manager::ReadState(const std::string& id) {
  json j = TRY(ReadJsonFile(ContainerDir(id) + "/state.json"));
  return StateFromJson(j);
}

Result<Record> Manager::Load(const std::string& id) {
  auto j = ReadJsonFile(ContainerDir(id) + "/config.v2.json");
  if (!j) {
    if (j.error().code() == Errc::kNotFound)
      return Error(Errc::kNotFound, "No such container: " + id);
    return std::move(j).error();
  }
  return RecordFromJson(*j);
}

Result<std::string> Manager::Resolve(std::string_view ref) {
  if (ref.empty()) return Error(Errc::kInvalidArgument, "empty container name");
  std::string r(ref);
  if (StartsWith(r, "/")) r.erase(0, 1);
  if (ValidName(r)) {
    char buf[256];
    std::string link = root_ + "/containers/.names/" + r;
    ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && PathExists(ContainerDir(std::string(buf, n)))) return std::string(buf, n);
  }
  auto names = ListDir(root_ + "/containers");
  std::vector<std::string> hits;
  if (names) {
    for (const std::string& n : *names) {
      if (n[0] == '.') continue;
      if (n == r) return n;
      if (StartsWith(n, r)) hits.push_back(n);
    }
  }
  if (hits.size() == 1) return hits[0];
  if (hits.size() > 1)
    return Error(Errc::kInvalidArgument,
                 "multiple containers found with provided prefix: " + r);
  return Error(Errc::kNotFound, "No such container: " + r);
}

Result<State> Manager::GetState(const std::string& id) {
  State s = TRY(ReadState(id));
  if ((s.status != "running" && s.status != "paused") || MonitorAlive(s)) return s;
  // The monitor is gone: the container died with it (PR_SET_PDEATHSIG). Record that once.
  auto lock = FileLock::Acquire(ContainerDir(id) + "/lock", FileLock::Mode::kExclusive);
  if (!lock) return std::move(lock).error();
  s = TRY(ReadState(id));
  if ((s.status != "running" && s.status != "paused") || MonitorAlive(s)) return s;
  (void)runtime::RemoveCgroup("shale/" + id);
  if (auto d = networks_.Detach(id); !d) LogWarn("network of " + id + ": " + d.error().message());
  // Without the store lock: the mount is this container's own and nobody else mounts it.
  (void)images_->driver().Unmount(id);
  s.status = "exited";
  s.exit_code = 137;
  s.error = "the container's monitor (pid " + std::to_string(s.monitor_pid) + ") died";
  s.finished_ns = NowUnixNanos();
  s.pid = 0;
  TRY(SaveState(id, s));
  return s;
}

Result<std::vector<Summary>> Manager::List(bool all) {
  std::vector<Summary> out;
  auto names = ListDir(root_ + "/containers");
  if (!names) return out;
  for (const std::string& n : *names) {
    if (n[0] == '.') continue;
    auto r = Load(n);
    if (!r) continue;  // being created or removed
    auto s = GetState(n);
    if (!s) continue;
    if (!all && s->status != "running" && s->status != "paused") continue;
    out.push_back({std::move(*r), std::move(*s)});
  }
  std::sort(out.begin(), out.end(), [](const Summary& a, const Summary& b) {
    return a.record.created_ns > b.record.created_ns;
  });
  return out;
}

Result<std::string> Manager::Create(const CreateOptions& o) {
  FileLock lock = TRY(images_->Lock(FileLock::Mode::kExclusive));
  TracePhase("create: lock the store");
  image::Image img = TRY(images_->Resolve(o.image).Wrap("Unable to find image '" + o.image + "'"));
  TracePhase("create: resolve the image");
  std::vector<std::string> env_file_lines;
  for (const std::string& f : o.env_files) {
    // A path the user hands us: a regular file only (a FIFO or /dev/zero would hang
    // create), and bounded.
    std::string text = TRY(ReadRegularFile(f, 16 << 20).Wrap("--env-file"));
    auto lines = TRY(ParseEnvFile(text).Wrap("--env-file " + f));
    env_file_lines.insert(env_file_lines.end(), lines.begin(), lines.end());
  }
  std::string id = RandomHexId(64);
  auto [cfg, host] = TRY(MergeConfig(img.config.value("config", json::object()), o, id,
                                     HostHostname(), env_file_lines));
  TRY(CheckUlimits(host.ulimits));
  if (UsesCni(host.network_mode)) {
    TRY(networks_.Get(host.network_mode).Wrap("--network"));
    // A fixed host port in use fails here, before anything exists (docker leaves a created
    // container behind; the reservation itself is taken again at start).
    std::vector<network::PortMapping> fixed;
    for (const network::PortMapping& m : host.port_bindings)
      if (m.host_port) fixed.push_back(m);
    TRY(network::ReservePorts(fixed));
  } else if (std::string other = NetworkContainer(host.network_mode); !other.empty()) {
    TRY(Resolve(other).Wrap("--network container:" + other));
  }
  TracePhase("create: merge the config");

  Record r;
  r.id = id;
  r.created_ns = NowUnixNanos();
  r.image_id = img.id.str();
  r.config = std::move(cfg);
  r.host = std::move(host);

  std::string names_dir = root_ + "/containers/.names";
  std::string dir = ContainerDir(id);
  graph::GraphDriver& drv = images_->driver();
  bool made_name = false, made_dir = false, made_ref = false, began_network = false;
  CreateGuard guard(this, id);
  guard.cleanup_ = [&]() -> Result<void> {
    if (began_network) AbandonNetwork(id);
    if (made_ref) (void)images_->RemoveContainerRef(id);
    (void)drv.RemoveStack({id, id + "-init"});
    if (made_dir) (void)RemoveTreeAbs(dir);
    if (made_name) (void)unlink((names_dir + "/" + r.name).c_str());
    return Ok();
  };

  // Reserve the name: symlinkat is atomic, EEXIST means taken.
  if (!o.name.empty()) {
    std::string n = StartsWith(o.name, "/") ? o.name.substr(1) : o.name;
    if (!ValidName(n))
      return Error(Errc::kInvalidArgument, "Invalid container name (" + o.name +
                                               "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    if (symlink(id.c_str(), (names_dir + "/" + n).c_str()) != 0) {
      if (errno != EEXIST) return Error::FromErrno(errno, "reserve the name " + n);
      char buf[256];
      ssize_t len = readlink((names_dir + "/" + n).c_str(), buf, sizeof(buf) - 1);
      std::string owner = len > 0 ? std::string(buf, len) : "?";
      if (len > 0 && !PathExists(ContainerDir(owner))) {
        // A stale reservation (a crash between reserve and create): take it over.
        unlink((names_dir + "/" + n).c_str());
        if (symlink(id.c_str(), (names_dir + "/" + n).c_str()) != 0)
          return Error::FromErrno(errno, "reserve the name " + n);
      } else {
        return Error(Errc::kAlreadyExists,
                     "Conflict. The container name \"/" + n +
                         "\" is already in use by container \"" + owner +
                         "\". You have to remove (or rename) that container to be able to "
                         "reuse that name.");
      }
    }
    r.name = n;
    made_name = true;
  } else {
    for (int i = 0; i < 100 && !made_name; ++i) {
      std::string n = RandomName();
      if (i >= 10) n += std::to_string(i);
      if (symlink(id.c_str(), (names_dir + "/" + n).c_str()) == 0) {
        r.name = n;
        made_name = true;
      } else if (errno != EEXIST) {
        return Error::FromErrno(errno, "reserve a container name");
      }
    }
    if (!made_name) return Error(Errc::kInternal, "could not find a free container name");
  }

  TracePhase("create: reserve the name");
  if (mkdir(dir.c_str(), 0710) != 0) return Error::FromErrno(errno, "mkdir " + dir);
  made_dir = true;
  // hosts first: the attach names the container in it when its ADDs are done.
  TRY(WriteHostFiles(dir, r.config.hostname, r.host.network_mode));
  if (o.start_now && UsesCni(r.host.network_mode)) {
    TRY(BeginNetwork(r));
    began_network = true;
    TracePhase("create: begin the network setup");
  }
  // Init layer: Docker's placeholders, bound over at start.
  TRY(drv.Create(id + "-init", img.top_layer_id, graph::LayerKind::kInit)
          .Wrap("create the init layer"));
  TracePhase("create: init layer");
  {
    Dir diff = TRY(drv.OpenDiffDir(id + "-init"));
    TRY(FillInitLayer(diff).Wrap("fill the init layer"));
  }
  TracePhase("create: fill the init layer");
  TRY(drv.Create(id, id + "-init", graph::LayerKind::kContainer)
          .Wrap("create the read-write layer"));
  TracePhase("create: read-write layer");
  TRY(images_->AddContainerRef(id, img, id + "-init", id));
  made_ref = true;
  TracePhase("create: container ref in layerdb/mounts");

  TRY(WriteJsonFast(dir + "/config.v2.json", RecordToJson(r)));
  TRY(SaveState(id, State{}));
  TracePhase("create: record, state");
  guard.Release();
  return id;
}

Result<oci::RuntimeSpec> Manager::Prepare(const Record& r) {
  graph::GraphDriver& drv = images_->driver();
  // A --rm container never outlives a crash: its upper dir need not be synced (podman does
  // the same), which also spares the sync of the whole file system at unmount.
  graph::MountOptions mo;
  mo.volatile_upper = r.host.auto_remove;
  std::string merged = TRY(drv.Mount(r.id, mo).Wrap("mount the container's rootfs"));
  TracePhase("start: mount the rootfs");
  bool ok = false;
  struct Unmounter {
    Manager* m;
    graph::GraphDriver& d;
    const std::string& id;
    bool& ok;
    ~Unmounter() {
      if (ok) return;
      (void)d.Unmount(id);
      // A setup begun by Create (run) for a start that fails here.
      if (m->begun_network_id_ == id) m->AbandonNetwork(id);
    }
  } unmounter{this, drv, r.id, ok};
  Dir rootfs = TRY(Dir::Open(merged));
  if (!r.config.working_dir.empty())
    if (auto made = rootfs.MakeDirs(r.config.working_dir); !made) {
      std::string why = made.error().code() == Errc::kNotFound
                            ? ": a path component is a symlink that points nowhere in the image"
                            : "";
      return std::move(made).error().Wrap("working directory " + r.config.working_dir +
                                          " of image " + r.config.image + why);
    }
  std::string home;
  oci::User user = TRY(ResolveUser(rootfs, r.config.user, &home));
  for (const Bind& b : r.host.binds)
    if (!PathExists(b.source)) TRY(MakeDirsAbs(b.source).Wrap("create the -v source"));
  std::string dir = ContainerDir(r.id);
  SpecPaths paths{merged, dir + "/hostname", dir + "/hosts", dir + "/resolv.conf", "", home};
  if (r.host.init) paths.init_binary = FindInitBinary();
  oci::RuntimeSpec spec = TRY(BuildSpec(r.id, r.config, r.host, user, paths));
  if (r.host.privileged) {
    // "All capabilities" means all that we hold: a capability outside our own bounding set
    // cannot be granted (cap_set_proc fails with EPERM).
    oci::Capabilities& c = spec.process.capabilities;
    std::vector<std::string> held;
    int i = 0;
    for (const std::string& name : AllCapabilities()) {
      if (prctl(PR_CAPBSET_READ, i++, 0, 0, 0) == 1) held.push_back(name);
    }
    c.bounding = c.effective = c.permitted = held;
  }
  TracePhase("start: user, spec");
  TRY(PrepareNetwork(r, spec).Wrap("set up the network of " + r.name));
  TracePhase("start: network");
  if (auto w = WriteJsonFast(dir + "/config.json", oci::ToJson(spec)); !w) {
    AbandonNetwork(r.id);
    return w.error();
  }
  TracePhase("start: config.json");
  ok = true;
  return spec;
}

Result<void> Manager::Destroy(const std::string& id) {
  graph::GraphDriver& drv = images_->driver();
  auto rec = Load(id);
  (void)runtime::RemoveCgroup("shale/" + id);
  (void)AwaitNetwork();  // a setup that never reached a monitor (a failed start)
  // DEL runs in the background while the layers go.
  network::PendingOp net = TakeNetworkRelease(id);
  TracePhase("destroy: load the record, remove the cgroup, start releasing the network");
  auto layers = [&]() -> Result<void> {
    TRY(drv.Unmount(id).Wrap("unmount the rootfs"));
    TracePhase("destroy: unmount the rootfs");
    // The read-write layer first (it is built on the init layer); their files are deleted
    // side by side.
    TRY(drv.RemoveStack({id, id + "-init"}).Wrap("remove the read-write and init layers"));
    TracePhase("destroy: remove the read-write and init layers");
    TRY(images_->RemoveContainerRef(id));
    TracePhase("destroy: remove the container ref");
    return Ok();
  };
  Result<void> gone = layers();
  Result<void> released = net.Wait();
  TracePhase("destroy: wait for the network release");
  // The record stays while anything failed, so that rm can be tried again.
  if (!released) return std::move(released).error().Wrap("release the network");
  TRY(std::move(gone));
  if (rec && !rec->name.empty()) {
    std::string link = root_ + "/containers/.names/" + rec->name;
    char buf[256];
    ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf, n) == id) unlink(link.c_str());
  }
  auto removed = RemoveTreeAbs(ContainerDir(id));
  TracePhase("destroy: name, container dir");
  return removed;
}

Result<void> Manager::WaitNotRunning(const std::string& id, int64_t timeout_ms, bool* timed_out) {
  int64_t deadline = NowUnixNanos() + timeout_ms * 1000000;
  if (timed_out) *timed_out = false;
  for (int i = 0;; ++i) {
    auto s = GetState(id);
    if (!s) {
      if (s.error().code() == Errc::kNotFound) return Ok();  // removed (--rm)
      return std::move(s).error();
    }
    if (s->status != "running" && s->status != "paused") return Ok();
    if (timeout_ms >= 0 && NowUnixNanos() > deadline) {
      if (timed_out) *timed_out = true;
      return Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(i < 20 ? 5 : 20));
  }
}

Result<void> Manager::Kill(const std::string& id, int sig) {
  State s = TRY(GetState(id));
  if (s.status != "running" && s.status != "paused")
    return Error(Errc::kInvalidArgument, "Container " + id + " is not running");
  if (::kill(s.pid, sig) != 0 && errno != ESRCH)
    return Error::FromErrno(errno, "kill " + std::to_string(s.pid));
  return Ok();
}

Result<void> Manager::Stop(const std::string& id, int timeout_s) {
  Record r = TRY(Load(id));
  State s = TRY(GetState(id));
  if (s.status != "running" && s.status != "paused") return Ok();
  int sig = SIGTERM;
  if (!r.config.stop_signal.empty()) sig = TRY(ParseSignal(r.config.stop_signal));
  if (s.status == "paused") (void)runtime::Freeze("shale/" + id, false);
  if (::kill(s.pid, sig) != 0 && errno != ESRCH)
    return Error::FromErrno(errno, "kill " + std::to_string(s.pid));
  bool timed_out = false;
  TRY(WaitNotRunning(id, int64_t{timeout_s} * 1000, &timed_out));
  if (!timed_out) return Ok();
  if (::kill(s.pid, SIGKILL) != 0 && errno != ESRCH)
    return Error::FromErrno(errno, "kill " + std::to_string(s.pid));
  return WaitNotRunning(id, -1, nullptr);
}

Result<int> Manager::Wait(const std::string& id) {
  std::string dir = ContainerDir(id);
  TRY(WaitNotRunning(id, -1, nullptr));
  auto s = GetState(id);
  if (!s) return std::move(s).error();
  return s->exit_code;
}

Result<void> Manager::Remove(const std::string& id, bool force) {
  State s = TRY(GetState(id));
  if (s.status == "running" || s.status == "paused") {
    if (!force)
      return Error(Errc::kBusy, "cannot remove container " + id +
                                    ": container is running: stop the container before "
                                    "removing or force remove (rm -f)");
    if (s.status == "paused") (void)runtime::Freeze("shale/" + id, false);
    if (::kill(s.pid, SIGKILL) != 0 && errno != ESRCH)
      return Error::FromErrno(errno, "kill " + std::to_string(s.pid));
    // Not holding the store lock: the monitor takes it to unmount.
    TRY(WaitNotRunning(id, -1, nullptr));
  }
  FileLock lock = TRY(images_->Lock(FileLock::Mode::kExclusive));
  if (!PathExists(ContainerDir(id))) return Ok();  // its monitor removed it (--rm)
  return Destroy(id).Wrap("remove container " + id);
}

Result<nlohmann::json> Manager::Inspect(const std::string& id) {
  Record r = TRY(Load(id));
  State s = TRY(GetState(id));
  std::string dir = ContainerDir(id);
  json j;
  j["Id"] = r.id;
  j["Created"] = FormatRfc3339Nano(r.created_ns);
  std::vector<std::string> args = ProcessArgs(r.config);
  j["Path"] = args.empty() ? "" : args[0];
  j["Args"] = args.size() > 1 ? json(std::vector<std::string>(args.begin() + 1, args.end()))
                              : json::array();
  j["State"] = {{"Status", s.status},
                {"Running", s.status == "running" || s.status == "paused"},
                {"Paused", s.status == "paused"},
                {"Restarting", false},
                {"OOMKilled", s.oom_killed},
                {"Dead", false},
                {"Pid", s.pid},
                {"ExitCode", s.exit_code},
                {"Error", s.error},
                {"StartedAt", TimeOrZero(s.started_ns)},
                {"FinishedAt", TimeOrZero(s.finished_ns)}};
  j["Image"] = r.image_id;
  j["ResolvConfPath"] = dir + "/resolv.conf";
  j["HostnamePath"] = dir + "/hostname";
  j["HostsPath"] = dir + "/hosts";
  j["LogPath"] = dir + "/" + id + "-json.log";
  j["Name"] = "/" + r.name;
  j["RestartCount"] = 0;
  j["Driver"] = std::string(images_->driver().Name());
  j["Platform"] = "linux";
  j["HostConfig"] = ToJson(r.host);
  j["NetworkSettings"] = NetworkSettings(r);
  json gd = {{"Name", std::string(images_->driver().Name())}};
  auto md = images_->driver().Metadata(id);
  gd["Data"] = md ? json(*md) : json(nullptr);
  j["GraphDriver"] = gd;
  json mounts = json::array();
  for (const Bind& b : r.host.binds)
    mounts.push_back({{"Type", "bind"},
                      {"Source", b.source},
                      {"Destination", b.destination},
                      {"Mode", b.readonly ? "ro" : ""},
                      {"RW", !b.readonly},
                      {"Propagation", "rprivate"}});
  j["Mounts"] = mounts;
  j["Config"] = ToJson(r.config);
  return j;
}

}  // namespace shale::container
