// commit, diff, export: the container's read-write layer seen from the host.
#include <stdlib.h>
#include <unistd.h>

#include "container/container.h"
#include "runtime/runtime.h"
#include "util/strings.h"

namespace shale::container {
namespace {

using nlohmann::json;

// Thaws the container's cgroup on every path out of commit.
class Thaw {
 public:
  explicit Thaw(std::string path) : path_(std::move(path)) {}
  ~Thaw() {
    if (!path_.empty()) (void)runtime::Freeze(path_, false);
  }

 private:
  std::string path_;
};

}  // namespace

Result<image::Image> Manager::Commit(const std::string& id, const CommitRequest& req) {
  Record r = TRY(Load(id));
  State s = TRY(GetState(id));
  FileLock lock = TRY(images_->Lock(FileLock::Mode::kExclusive));
  image::Image base = TRY(images_->Resolve(r.image_id).Wrap("the container's image"));

  // The new image's config: what the container ran with, then the -c changes.
  json cfg = base.config.value("config", json::object());
  json mine = ToJson(r.config);
  for (const char* k : {"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels"})
    cfg[k] = mine[k];
  cfg["Hostname"] = r.config.hostname;
  cfg["Image"] = r.image_id;
  TRY(image::ApplyChanges(cfg, req.changes));

  image::CommitOptions co;
  co.message = req.message;
  co.author = req.author;
  co.container_config = cfg;
  co.container_id = id;
  co.tag = req.tag;
  if (const char* sde = getenv("SOURCE_DATE_EPOCH"); sde && *sde) {
    co.clamp_mtime = strtoll(sde, nullptr, 10);
  } else if (req.reproducible) {
    co.clamp_mtime = base.created_unix;
  }

  std::unique_ptr<Thaw> thaw;
  if (req.pause && s.status == "running") {
    TRY(runtime::Freeze("shale/" + id, true).Wrap("pause " + id + " for commit"));
    thaw = std::make_unique<Thaw>("shale/" + id);
  }
  // Only the upper dir (overlay2/<id>/diff); the init layer is never packed.
  return images_->Commit(base, id, co).Wrap("commit " + id);
}

Result<std::vector<layer::Change>> Manager::Diff(const std::string& id) {
  Record r = TRY(Load(id));
  FileLock lock = TRY(images_->Lock(FileLock::Mode::kShared));
  image::Image img = TRY(images_->Resolve(r.image_id).Wrap("the container's image"));
  graph::GraphDriver& drv = images_->driver();
  // Lowers top first: the init layer, then the image's layers. The init layer's own files
  // never show: they are below the upper dir, not in it.
  std::vector<std::string> lowers = {drv.DiffPath(id + "-init")};
  std::vector<std::string> ids = TRY(images_->LayerIds(img));
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) lowers.push_back(drv.DiffPath(*it));
  Dir upper = TRY(drv.OpenDiffDir(id));
  return layer::Changes(upper, lowers);
}

Result<void> Manager::Export(const std::string& id, int out_fd) {
  TRY(Load(id));
  State s = TRY(GetState(id));
  FileLock lock = TRY(images_->Lock(FileLock::Mode::kExclusive));
  graph::GraphDriver& drv = images_->driver();
  bool running = s.status == "running" || s.status == "paused";
  std::string merged = TRY(drv.Mount(id).Wrap("mount " + id));
  struct Unmount {
    graph::GraphDriver& d;
    std::string id;
    bool keep;
    ~Unmount() {
      if (!keep) (void)d.Unmount(id);
    }
  } unmount{drv, id, running};
  Dir root = TRY(Dir::Open(merged));
  TRY(layer::WriteTree(root, out_fd).Wrap("export " + id));
  return Ok();
}

}  // namespace shale::container
