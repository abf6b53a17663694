// The classic builder's loop: FROM, then one image per instruction, each either found in
// the cache or made (config only, or a container's upper dir committed).
#include "build/builder.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <charconv>
#include <deque>
#include <memory>
#include <optional>

#include "build/cache.h"
#include "build/copy.h"
#include "build/dockerfile.h"
#include "build/dockerignore.h"
#include "build/history.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::build {
namespace {

using nlohmann::json;

constexpr std::string_view kContainerPrefix = "shale-build-";

// SIGINT/SIGTERM blocked for the build and readable on a signalfd: a RUN is killed when
// one arrives, other steps stop at their end; every owner then cleans up on the way out.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigprocmask(SIG_BLOCK, &set_, &old_);
    // An ignored signal is dropped, blocked or not (a shell's background job ignores
    // SIGINT): back to the default, which never runs while the signal is blocked.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGINT, &dfl, &old_int_);
    sigaction(SIGTERM, &dfl, &old_term_);
    fd_ = UniqueFd(signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~SignalGuard() {
    // Consumed here: left pending, the signal would kill us once unblocked, before the
    // caller has reported the interruption.
    struct signalfd_siginfo si;
    while (fd_ && read(fd_.get(), &si, sizeof si) == sizeof si) {
    }
    fd_.reset();
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_.get(); }
  bool Pending() const {
    if (!fd_) return false;
    struct pollfd p = {fd_.get(), POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }

 private:
  sigset_t set_, old_;
  struct sigaction old_int_ {}, old_term_ {};
  UniqueFd fd_;
};

// Removes a step's container on every path out.
class StepContainer {
 public:
  StepContainer(container::Manager& m, std::string id) : m_(m), id_(std::move(id)) {}
  ~StepContainer() { (void)m_.Remove(id_, true); }
  const std::string& id() const { return id_; }

 private:
  container::Manager& m_;
  std::string id_;
};

// Unmounts an image view on every path out.
class ImageView {
 public:
  ImageView(image::ImageStore& s, image::Image img) : s_(s), img_(std::move(img)) {}
  ~ImageView() {
    if (auto lock = s_.Lock(FileLock::Mode::kExclusive); lock) (void)s_.UnmountImage(img_);
  }

 private:
  image::ImageStore& s_;
  image::Image img_;
};

bool IsUrl(std::string_view s) {
  return StartsWith(s, "http://") || StartsWith(s, "https://") || StartsWith(s, "git@") ||
         StartsWith(s, "git://");
}

struct StageState {
  image::Image image;       // the current image (default = scratch, no image yet)
  bool scratch = true;      // nothing committed yet on a scratch base
  json config;              // the image config's "config"
  bool cmd_set = false;
};

class Builder {
 public:
  Builder(container::Manager& mgr, const BuildOptions& o)
      : mgr_(mgr), images_(mgr.images()), o_(o),
        cache_(images_.root() + "/image/overlay2/buildcache") {}

  Result<BuildResult> Run();

 private:
  void Print(std::string_view s) {
    if (!o_.quiet) (void)WriteAll(o_.out_fd, std::string(s) + "\n", "stdout");
  }
  Result<void> CheckCancelled() {
    if (signals_.Pending()) return Error(Errc::kCancelled, "build interrupted");
    return Ok();
  }
  Result<void> RemoveOrphans();
  Result<void> RunStage(size_t index);
  Result<void> From(size_t index, StageState& st);
  Result<void> Instruction(const build::Instruction& ins, StageExpander& ex, StageState& st);
  Result<void> Apply(const ExpandedInstruction& e, StageState& st);
  Result<void> ConfigStep(const ExpandedInstruction& e, StageState& st);
  Result<void> RunStep(const ExpandedInstruction& e, StageState& st);
  Result<void> CopyStep(const ExpandedInstruction& e, StageState& st);
  Result<void> WorkdirStep(const ExpandedInstruction& e, StageState& st);
  // The cache lookup: the image recorded for `key`, if it still exists.
  std::optional<image::Image> Cached(const std::string& key);
  // After a step made or found `img`.
  Result<void> Advance(StageState& st, image::Image img, json config, const std::string& key,
                       bool hit);
  // The image a container of this stage starts from (scratch: an empty base image).
  Result<image::Image> ContainerBase(StageState& st);
  Result<std::string> NewContainer(const image::Image& base, const json& config,
                                   std::vector<std::string> args, std::vector<std::string> env);
  Result<SourceTree*> ContextTree();
  // The step container's merged rootfs, mounted (the container's removal unmounts it).
  Result<Dir> MountStep(const std::string& ctr);
  // Commits the step container `ctr` ("" = config only) on `base`.
  Result<image::Image> CommitStep(const image::Image& base, const std::string& ctr,
                                  const json& config, const std::string& created_by,
                                  const std::string& author = "");
  std::string ParentKey(const StageState& st) const { return st.scratch ? "" : st.image.id.str(); }

  container::Manager& mgr_;
  image::ImageStore& images_;
  const BuildOptions& o_;
  // docker build's modes; its "default" is the bridge.
  std::string StepNetwork() const { return o_.network == "default" ? "bridge" : o_.network; }
  BuildCache cache_;
  SignalGuard signals_;
  Dockerfile df_;
  VarMap meta_;
  std::vector<size_t> needed_;
  std::map<size_t, image::Image> results_;
  std::unique_ptr<SourceTree> context_;
  std::deque<Dockerfile> triggers_;  // parsed ONBUILD triggers, alive while expanded
  size_t stage_ = 0;                 // the stage being built
  int step_ = 0, steps_ = 0;
};

Result<void> Builder::RemoveOrphans() {
  auto list = TRY(mgr_.List(true));
  for (const auto& s : list) {
    if (!StartsWith(s.record.name, kContainerPrefix)) continue;
    // shale-build-<pid>-<random>: only a dead build's containers go.
    std::vector<std::string> parts = Split(s.record.name.substr(kContainerPrefix.size()), '-');
    if (parts.empty()) continue;
    auto pid = ParseInt(parts[0], 1, INT32_MAX, "pid");
    if (!pid || (::kill(static_cast<pid_t>(*pid), 0) == 0 && *pid != getpid()) || errno == EPERM)
      continue;
    (void)mgr_.Remove(s.record.id, true);
  }
  return Ok();
}

std::optional<image::Image> Builder::Cached(const std::string& key) {
  if (o_.no_cache) return std::nullopt;
  auto id = cache_.Get(key);
  if (!id) return std::nullopt;
  auto img = images_.Resolve(*id);
  if (!img) return std::nullopt;
  return std::move(*img);
}

Result<void> Builder::Advance(StageState& st, image::Image img, json config,
                              const std::string& key, bool hit) {
  if (hit) {
    Print(" ---> Using cache");
  } else {
    TRY(cache_.Put(key, img.id.str()));
  }
  Print(" ---> " + img.id.Short());
  st.image = std::move(img);
  st.scratch = false;
  st.config = std::move(config);
  return Ok();
}

Result<image::Image> Builder::ContainerBase(StageState& st) {
  if (!st.scratch) return st.image;
  image::BuildStepOptions bo;
  bo.config = st.config;
  bo.base_only = true;
  FileLock lock = TRY(images_.Lock(FileLock::Mode::kExclusive));
  return images_.CommitBuildStep(image::Image{}, "", bo);
}

Result<std::string> Builder::NewContainer(const image::Image& base, const json& config,
                                          std::vector<std::string> args,
                                          std::vector<std::string> env) {
  container::StepConfig sc;
  sc.image = base.id.str();
  sc.args = std::move(args);
  sc.env = std::move(env);
  sc.workdir = config.value("WorkingDir", "");
  sc.user = config.value("User", "");
  sc.network = StepNetwork();
  sc.name = std::string(kContainerPrefix) + std::to_string(getpid()) + "-" + RandomHexId(12);
  return mgr_.CreateStep(sc);
}

Result<SourceTree*> Builder::ContextTree() {
  if (context_) return context_.get();
  if (o_.context_dir.empty())
    return Error(Errc::kInvalidArgument,
                 "COPY and ADD need a build context; the Dockerfile came on stdin (-) without one");
  Dir root = TRY(Dir::Open(o_.context_dir).Wrap("build context"));
  std::vector<std::string> patterns;
  if (auto text = root.ReadRegularFile(".dockerignore", 1 << 20); text) {
    patterns = ReadDockerignore(*text);
  } else if (text.error().code() != Errc::kNotFound) {
    return std::move(text).error().Wrap(".dockerignore");
  }
  IgnoreMatcher m = TRY(IgnoreMatcher::Create(patterns).Wrap(".dockerignore"));
  std::vector<ContextEntry> entries = TRY(ListContext(root, m));
  context_ = std::make_unique<SourceTree>(std::move(root), std::move(entries));
  return context_.get();
}

Result<Dir> Builder::MountStep(const std::string& ctr) {
  std::string merged;
  {
    FileLock lock = TRY(images_.Lock(FileLock::Mode::kExclusive));
    merged = TRY(images_.driver().Mount(ctr).Wrap("mount the step's container"));
  }
  return Dir::Open(merged);
}

Result<image::Image> Builder::CommitStep(const image::Image& base, const std::string& ctr,
                                         const json& config, const std::string& created_by,
                                         const std::string& author) {
  image::BuildStepOptions bo;
  bo.config = config;
  bo.created_by = created_by;
  bo.author = author;
  FileLock lock = TRY(images_.Lock(FileLock::Mode::kExclusive));
  return images_.CommitBuildStep(base, ctr, bo);
}

Result<void> Builder::ConfigStep(const ExpandedInstruction& e, StageState& st) {
  json config = st.config;
  ConfigChange ch = TRY(ApplyToConfig(e, config, &st.cmd_set));
  std::string key = CacheKey({ParentKey(st), ch.created_by, config, {}, ""});
  if (auto hit = Cached(key)) return Advance(st, std::move(*hit), std::move(config), key, true);
  image::Image img =
      TRY(CommitStep(st.scratch ? image::Image{} : st.image, "", config, ch.created_by, ch.author));
  return Advance(st, std::move(img), std::move(config), key, false);
}

Result<void> Builder::RunStep(const ExpandedInstruction& e, StageState& st) {
  std::vector<std::string> args = RunArgs(e, st.config);
  std::string created_by = RunCreatedBy(e, st.config);
  std::string key = CacheKey({ParentKey(st), created_by, st.config, e.run_env, ""});
  if (auto hit = Cached(key)) return Advance(st, std::move(*hit), st.config, key, true);
  image::Image base = TRY(ContainerBase(st));
  StepContainer ctr(mgr_, TRY(NewContainer(base, st.config, args, e.run_env)));
  Print(" ---> Running in " + ctr.id().substr(0, 12));
  container::StepIo io;
  UniqueFd devnull;
  if (o_.quiet) {
    devnull = UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    io.out = io.err = devnull.get();
  } else {
    io.out = io.err = o_.out_fd;
  }
  io.cancel_fd = signals_.fd();
  auto status = mgr_.RunStep(ctr.id(), io);
  if (!status) {
    if (status.error().code() == Errc::kCancelled) return Error(Errc::kCancelled, "build interrupted");
    return std::move(status).error().Wrap("The command '" + Join(args, " ") + "' could not be run");
  }
  if (*status != 0)
    return Error(Errc::kInvalidArgument, "The command '" + Join(args, " ") +
                                             "' returned a non-zero code: " +
                                             std::to_string(*status));
  TRY(CheckCancelled());
  image::Image img = TRY(CommitStep(base, ctr.id(), st.config, created_by));
  Print("Removing intermediate container " + ctr.id().substr(0, 12));
  return Advance(st, std::move(img), st.config, key, false);
}

Result<void> Builder::CopyStep(const ExpandedInstruction& e, StageState& st) {
  const bool add = e.command == Command::kAdd;
  std::vector<std::string> srcs(e.words.begin(), e.words.end() - 1);
  for (const std::string& s : srcs) {
    if (!IsUrl(s)) continue;
    if (!add) return Error(Errc::kInvalidArgument, "COPY " + s + ": source can't be a URL for COPY");
    return Error(Errc::kUnsupported,
                 "ADD " + s + ": downloading is not supported (shale builds without network); "
                 "fetch the file into the build context and COPY it");
  }
  // The source tree: the context, or another stage's or an image's merged view.
  std::unique_ptr<SourceTree> other;
  std::unique_ptr<ImageView> view;
  SourceTree* tree = nullptr;
  if (auto from = e.flags.find("from"); from != e.flags.end()) {
    image::Image src;
    if (auto idx = FindStage(df_, from->second, stage_);
        idx && results_.count(*idx)) {
      src = results_[*idx];
    } else {
      src = TRY(images_.Resolve(from->second).Wrap("COPY --from=" + from->second));
    }
    std::string merged;
    {
      FileLock lock = TRY(images_.Lock(FileLock::Mode::kExclusive));
      merged = TRY(images_.MountImage(src));
    }
    view = std::make_unique<ImageView>(images_, src);
    Dir root = TRY(Dir::Open(merged));
    IgnoreMatcher none = TRY(IgnoreMatcher::Create({}));
    std::vector<ContextEntry> entries = TRY(ListContext(root, none));
    other = std::make_unique<SourceTree>(std::move(root), std::move(entries));
    tree = other.get();
  } else {
    tree = TRY(ContextTree());
  }
  std::string dest = NormalizeDest(e.words.back(), st.config.value("WorkingDir", ""));
  CopyPlan plan = TRY(PlanCopy(*tree, srcs, dest, false, add));
  std::string digest = TRY(HashPlan(*tree, plan));
  std::string created_by = CopyCreatedBy(e, st.config, plan.kind + ":" + digest);
  std::string key = CacheKey({ParentKey(st), created_by, st.config, {}, digest});
  if (auto hit = Cached(key)) return Advance(st, std::move(*hit), st.config, key, true);

  image::Image base = TRY(ContainerBase(st));
  StepContainer ctr(mgr_, TRY(NewContainer(base, st.config, ShellOf(st.config), {})));
  {
    Dir rootfs = TRY(MountStep(ctr.id()));
    std::string rel = dest;
    while (StartsWith(rel, "/")) rel.erase(0, 1);
    bool dest_is_dir = rel.empty() || bool(rootfs.OpenDir(rel));
    plan = TRY(PlanCopy(*tree, srcs, dest, dest_is_dir, add));
    CopyOwner owner;
    if (auto c = e.flags.find("chown"); c != e.flags.end()) {
      oci::User u = TRY(container::ResolveUser(rootfs, c->second).Wrap("--chown=" + c->second));
      owner.uid = u.uid;
      owner.gid = u.gid;
    }
    std::optional<mode_t> chmod;
    if (auto c = e.flags.find("chmod"); c != e.flags.end()) {
      unsigned v = 0;
      const char* end = c->second.data() + c->second.size();
      auto [p, ec] = std::from_chars(c->second.data(), end, v, 8);
      if (ec != std::errc() || p != end || v > 07777)
        return Error(Errc::kInvalidArgument, "--chmod=" + c->second + ": not an octal mode");
      chmod = static_cast<mode_t>(v);
    }
    TRY(CopyPlanInto(*tree, plan, rootfs, owner, chmod));
  }
  TRY(CheckCancelled());
  image::Image img = TRY(CommitStep(base, ctr.id(), st.config, created_by));
  return Advance(st, std::move(img), st.config, key, false);
}

Result<void> Builder::WorkdirStep(const ExpandedInstruction& e, StageState& st) {
  json config = st.config;
  ConfigChange ch = TRY(ApplyToConfig(e, config, &st.cmd_set));
  std::string key = CacheKey({ParentKey(st), ch.created_by, config, {}, ""});
  if (auto hit = Cached(key)) return Advance(st, std::move(*hit), std::move(config), key, true);
  image::Image base = TRY(ContainerBase(st));
  StepContainer ctr(mgr_, TRY(NewContainer(base, config, ShellOf(config), {})));
  {
    Dir rootfs = TRY(MountStep(ctr.id()));
    std::string wd = config.value("WorkingDir", "/");
    // A directory that exists leaves the upper dir empty: no layer (docker's empty diff).
    if (!TRY(rootfs.Exists(wd))) TRY(rootfs.MakeDirs(wd, 0755).Wrap("WORKDIR " + wd));
  }
  image::Image img = TRY(CommitStep(base, ctr.id(), config, ch.created_by));
  return Advance(st, std::move(img), std::move(config), key, false);
}

Result<void> Builder::Apply(const ExpandedInstruction& e, StageState& st) {
  switch (e.command) {
    case Command::kRun: return RunStep(e, st);
    case Command::kCopy:
    case Command::kAdd: return CopyStep(e, st);
    case Command::kWorkdir: return WorkdirStep(e, st);
    default: return ConfigStep(e, st);
  }
}

Result<void> Builder::Instruction(const build::Instruction& ins, StageExpander& ex,
                                  StageState& st) {
  TRY(CheckCancelled());
  Print("Step " + std::to_string(++step_) + "/" + std::to_string(steps_) + " : " + ins.original);
  ExpandedInstruction e = TRY(ex.Expand(ins));
  return Apply(e, st);
}

Result<void> Builder::From(size_t index, StageState& st) {
  const Stage& stage = df_.stages[index];
  ExpandedFrom f = TRY(ExpandFrom(df_, index, meta_));
  Print("Step " + std::to_string(++step_) + "/" + std::to_string(steps_) + " : " +
        stage.from.original);
  std::string where = o_.dockerfile_name + ":" + std::to_string(stage.from.line) + ": ";
  std::string base_lower = f.base;
  for (auto& c : base_lower) c = static_cast<char>(tolower(c));
  if (base_lower == "scratch") {
    st = StageState{};
    st.config = StageConfig(json::object());
    return Ok();
  }
  if (auto idx = FindStage(df_, f.base, index); idx && results_.count(*idx)) {
    st.image = results_[*idx];
  } else {
    auto img = images_.Resolve(f.base);
    if (o_.pull || !img) {
      if (!o_.pull)
        return Error(Errc::kNotFound,
                     where + "pull access denied for " + f.base +
                         ": the image is not in the store (shale build pulls only with --pull)");
      FileLock lock = TRY(images_.Lock(FileLock::Mode::kExclusive));
      image::PullOptions po;
      po.platform = f.platform;
      auto pulled = images_.Pull(f.base, po);
      if (!pulled) return std::move(pulled).error().Wrap(where + "pull " + f.base);
      img = images_.Resolve(pulled->image_id.str());
    }
    st.image = TRY(std::move(img));
  }
  st.scratch = false;
  st.cmd_set = false;
  Print(" ---> " + st.image.id.Short());
  json base_cfg = st.image.config.value("config", json::object());
  st.config = StageConfig(base_cfg);
  return Ok();
}

Result<void> Builder::RunStage(size_t index) {
  StageState st;
  stage_ = index;
  TRY(From(index, st));
  // The base's ONBUILD triggers run first, as docker runs them, then leave the config.
  std::vector<std::string> triggers;
  if (!st.scratch) {
    json base_cfg = st.image.config.value("config", json::object());
    if (base_cfg.contains("OnBuild") && base_cfg["OnBuild"].is_array())
      for (const auto& t : base_cfg["OnBuild"])
        if (t.is_string()) triggers.push_back(t.get<std::string>());
  }
  std::vector<std::string> env;
  for (const auto& v : st.config.value("Env", json::array()))
    if (v.is_string()) env.push_back(v.get<std::string>());
  StageExpander ex(df_, o_.build_args, meta_, env);
  if (!triggers.empty()) {
    Print("# Executing " + std::to_string(triggers.size()) + " build trigger" +
          (triggers.size() == 1 ? "" : "s"));
    for (const std::string& t : triggers) {
      std::string text = "FROM scratch\n" + t + "\n";
      triggers_.push_back(TRY(ParseDockerfile(text, "ONBUILD").Wrap("base image's ONBUILD")));
      const Dockerfile& tdf = triggers_.back();
      if (tdf.stages.empty() || tdf.stages[0].instructions.size() != 1)
        return Error(Errc::kInvalidArgument, "base image's ONBUILD " + t + ": not one instruction");
      TRY(CheckCancelled());
      ExpandedInstruction e = TRY(ex.Expand(tdf.stages[0].instructions[0]));
      TRY(Apply(e, st));
    }
  }
  for (const build::Instruction& ins : df_.stages[index].instructions) TRY(Instruction(ins, ex, st));
  if (index == needed_.back() && !o_.labels.empty()) {
    // docker appends --label as one LABEL instruction of the target stage.
    Print("Step " + std::to_string(++step_) + "/" + std::to_string(steps_) + " : LABEL " + [&] {
      std::string s;
      for (const auto& [k, v] : o_.labels) s += (s.empty() ? "" : " ") + GoQuote(k) + "=" + GoQuote(v);
      return s;
    }());
    ExpandedInstruction e;
    e.command = Command::kLabel;
    for (const auto& [k, v] : o_.labels) e.pairs.push_back({k, v});
    TRY(ConfigStep(e, st));
  }
  if (st.scratch) {
    // A stage of only FROM scratch: docker refuses to make an image of nothing.
    return Error(Errc::kInvalidArgument, "No image was generated. Is your Dockerfile empty?");
  }
  results_[index] = st.image;
  return Ok();
}

Result<BuildResult> Builder::Run() {
  // Everything that can be refused is refused before any work.
  const std::string net = StepNetwork();
  if (net != "none" && net != "host" && net != "bridge")
    return Error(Errc::kInvalidArgument,
                 "--network " + o_.network + ": use bridge (the default), host or none");
  std::vector<std::string> tags;
  for (const std::string& t : o_.tags) tags.push_back(TRY(image::NormalizeTag(t).Wrap("-t")));
  df_ = TRY(ParseDockerfile(o_.dockerfile_text, o_.dockerfile_name));
  meta_ = TRY(ResolveMetaArgs(df_, o_.build_args));
  needed_ = TRY(StagesNeeded(df_, o_.target, meta_));
  for (size_t i : needed_) {
    TRY(ExpandFrom(df_, i, meta_));
    steps_ += 1 + static_cast<int>(df_.stages[i].instructions.size());
  }
  if (!o_.labels.empty()) ++steps_;
  for (const std::string& w : df_.warnings) Print("[WARNING]: " + w);
  TRY(RemoveOrphans());

  for (size_t i : needed_) TRY(RunStage(i));
  std::vector<std::string> unused = UnconsumedBuildArgs(df_, o_.build_args);
  if (!unused.empty())
    Print("[Warning] One or more build-args [" + Join(unused, " ") + "] were not consumed");

  BuildResult out;
  const image::Image& img = results_[needed_.back()];
  out.image_id = img.id.str();
  Print("Successfully built " + img.id.Short());
  if (!tags.empty()) {
    FileLock lock = TRY(images_.Lock(FileLock::Mode::kExclusive));
    for (const std::string& t : tags) {
      TRY(images_.Tag(img, t));
      Print("Successfully tagged " + t);
    }
  }
  out.tags = tags;
  return out;
}

}  // namespace

Result<BuildResult> Build(container::Manager& mgr, const BuildOptions& opts) {
  Builder b(mgr, opts);
  return b.Run();
}

}  // namespace shale::build
