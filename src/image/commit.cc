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

Result<Image> StoreImpl::Commit(const Image& base, const std::string& upper_layer_id,
                                const CommitOptions& opts) {
  std::vector<std::string> tags;
  if (!opts.tag.empty()) tags.push_back(TRY(NormalizeTag(opts.tag)));
  Txn txn = TRY(Txn::Begin(*this));
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
  wo.clamp_mtime = opts.clamp_mtime;
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

  std::string now = FormatRfc3339Nano(NowUnixNanos());
  nlohmann::json cfg = base.config.is_object() ? base.config : nlohmann::json::object();
  cfg["config"] = opts.container_config.is_null() ? cfg.value("config", nlohmann::json::object())
                                                  : opts.container_config;
  cfg["container"] = opts.container_id;
  cfg["created"] = now;
  if (!opts.author.empty()) cfg["author"] = opts.author;
  else cfg.erase("author");
  if (!opts.message.empty()) cfg["comment"] = opts.message;
  else cfg.erase("comment");
  if (!cfg.contains("architecture")) cfg["architecture"] = "amd64";
  if (!cfg.contains("os")) cfg["os"] = "linux";
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const auto& d : base.diff_ids) diff_ids.push_back(d.str());
  diff_ids.push_back(wr.diff_id.str());
  cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  // Docker records the container's command as CREATED BY.
  std::vector<std::string> cmd;
  const auto& cc = cfg["config"];
  for (const char* k : {"Entrypoint", "Cmd"})
    if (cc.is_object() && cc.contains(k) && cc[k].is_array())
      for (const auto& a : cc[k])
        if (a.is_string()) cmd.push_back(a.get<std::string>());
  nlohmann::json h = {{"created", now}, {"created_by", Join(cmd, " ")}};
  if (!opts.message.empty()) h["comment"] = opts.message;
  if (!opts.author.empty()) h["author"] = opts.author;
  if (!cfg.contains("history") || !cfg["history"].is_array()) cfg["history"] = nlohmann::json::array();
  cfg["history"].push_back(h);

  Digest id = TRY(RegisterImage(txn, cfg.dump(), tags));
  txn.Commit();
  return Get(id);
}

}  // namespace shale::image
