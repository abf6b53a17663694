// docker commit: the container's upper dir becomes one new layer on top of its image.
// The upper dir is packed once (its sha256 is the diffID; the store keeps the tar as a
// tar-split, not as a second copy) and copied into the new driver layer from the same reads
// (layer::WriteDiffAndCopy): nothing is re-extracted and nothing below the upper dir is read, so the cost grows with the change,
// never with the image.
#include <fcntl.h>
#include <unistd.h>

#include "image/store_impl.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {

Result<Digest> StoreImpl::CommitUpper(Txn& txn, const Image& base,
                                      const std::string& upper_layer_id,
                                      std::optional<int64_t> clamp_mtime) {
  Dir upper = TRY(driver_->OpenDiffDir(upper_layer_id));
  std::string tar_path = txn.dir() + "/commit.tar";
  int fd = ::open(tar_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error::FromErrno(errno, "open " + tar_path);
  UniqueFd tar(fd);
  // The tar and the new layer's files come from one read of the upper dir: a running
  // container (commit -p false) may change a file at any time, and a second pass would make
  // a layer whose files differ from its tar (an image that loads but cannot be saved).
  Unpacked u;
  u.cache_id = RandomHexId();
  TRY(txn.NoteDriverLayer(u.cache_id));
  TRY(driver_->Create(u.cache_id, base.top_layer_id, graph::LayerKind::kImage));
  Dir diff = TRY(driver_->OpenDiffDir(u.cache_id));
  layer::WriteOptions wo;
  wo.clamp_mtime = clamp_mtime;
  layer::WriteResult wr =
      TRY(layer::WriteDiffAndCopy(upper, tar.get(), diff, wo).Wrap("pack upper dir"));
  tar.reset();

  Digest parent_chain = base.chain_ids.empty() ? Digest() : base.chain_ids.back();
  Digest chain = parent_chain.empty() ? wr.diff_id : ChainId(parent_chain, wr.diff_id);
  if (layers_.Has(chain)) {
    // The same change was committed before: its layer serves, the copy goes.
    TRY(driver_->Remove(u.cache_id).Wrap("commit"));
  } else {
    // The layer's files are durable before any record names them (load does the same
    // through layer::Apply's syncfs).
    TRY(SyncFsPath(driver_->DiffPath(u.cache_id)).Wrap("commit"));
    u.res.diff_id = wr.diff_id;
    u.res.digest = wr.diff_id;
    u.res.compressed_size = wr.size;
    u.res.uncompressed_size = wr.size;
    u.res.compression = layer::Compression::kNone;
    int64_t content = 0;
    if (auto du = DiskUsage(driver_->DiffPath(u.cache_id)); du) content = *du;
    u.res.content_size = content;
    u.blob_tmp = tar_path;
    TRY(Register(txn, u, chain, parent_chain, MediaTypeFor(layer::Compression::kNone)));
  }
  return wr.diff_id;
}

namespace {

// The base's config with the parts every child image rewrites: created, os/architecture
// defaults, rootfs (base's diffIDs plus `added`) and one more history entry.
nlohmann::json ChildConfig(const Image& base, const std::optional<Digest>& added,
                           nlohmann::json history_entry) {
  std::string now = FormatRfc3339Nano(NowUnixNanos());
  nlohmann::json cfg = base.config.is_object() ? base.config : nlohmann::json::object();
  cfg["created"] = now;
  if (!cfg.contains("architecture")) cfg["architecture"] = "amd64";
  if (!cfg.contains("os")) cfg["os"] = "linux";
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const auto& d : base.diff_ids) diff_ids.push_back(d.str());
  if (added) diff_ids.push_back(added->str());
  cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  history_entry["created"] = now;
  if (!added) history_entry["empty_layer"] = true;
  if (!cfg.contains("history") || !cfg["history"].is_array())
    cfg["history"] = nlohmann::json::array();
  cfg["history"].push_back(std::move(history_entry));
  return cfg;
}

}  // namespace

Result<Image> StoreImpl::CommitBuildStep(const Image& base, const std::string& upper_layer_id,
                                         const BuildStepOptions& opts) {
  Txn txn = TRY(Txn::Begin(*this));
  std::optional<Digest> added;
  if (!upper_layer_id.empty()) {
    Dir upper = TRY(driver_->OpenDiffDir(upper_layer_id));
    // Docker adds no layer for an empty diff (layer.IsEmpty): an unchanged WORKDIR, a RUN
    // that wrote nothing.
    if (!TRY(ListDirAt(upper.fd(), upper.path())).empty())
      added = TRY(CommitUpper(txn, base, upper_layer_id, std::nullopt));
  }
  nlohmann::json cfg = ChildConfig(base, added, {{"created_by", opts.created_by}});
  if (opts.base_only) {
    cfg.erase("created");
    cfg["history"] = nlohmann::json::array();
  }
  cfg["config"] = opts.config;
  if (!opts.author.empty()) cfg["author"] = opts.author;
  cfg.erase("comment");
  cfg.erase("container");
  Digest id = TRY(RegisterImage(txn, cfg.dump(), {}));
  if (!base.id.empty() && base.id != id) TRY(imagedb_.SetParent(id, base.id));
  txn.Commit();
  return Get(id);
}

Result<Image> StoreImpl::Commit(const Image& base, const std::string& upper_layer_id,
                                const CommitOptions& opts) {
  std::vector<std::string> tags;
  if (!opts.tag.empty()) tags.push_back(TRY(NormalizeTag(opts.tag)));
  Txn txn = TRY(Txn::Begin(*this));
  Digest diff_id = TRY(CommitUpper(txn, base, upper_layer_id, opts.clamp_mtime));

  // Docker records the container's command as CREATED BY.
  nlohmann::json container_config =
      opts.container_config.is_null() ? base.config.value("config", nlohmann::json::object())
                                      : opts.container_config;
  std::vector<std::string> cmd;
  for (const char* k : {"Entrypoint", "Cmd"})
    if (container_config.is_object() && container_config.contains(k) &&
        container_config[k].is_array())
      for (const auto& a : container_config[k])
        if (a.is_string()) cmd.push_back(a.get<std::string>());
  nlohmann::json h = {{"created_by", Join(cmd, " ")}};
  if (!opts.message.empty()) h["comment"] = opts.message;
  if (!opts.author.empty()) h["author"] = opts.author;
  nlohmann::json cfg = ChildConfig(base, diff_id, std::move(h));
  cfg["config"] = std::move(container_config);
  cfg["container"] = opts.container_id;
  if (!opts.author.empty()) cfg["author"] = opts.author;
  else cfg.erase("author");
  if (!opts.message.empty()) cfg["comment"] = opts.message;
  else cfg.erase("comment");

  Digest id = TRY(RegisterImage(txn, cfg.dump(), tags));
  if (!base.id.empty() && base.id != id) TRY(imagedb_.SetParent(id, base.id));
  txn.Commit();
  return Get(id);
}

}  // namespace shale::image
