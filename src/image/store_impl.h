// The ImageStore implementation (internal to image/).
#pragma once

#include <sys/stat.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "image/image_store.h"
#include "layer/layer.h"
#include "store/content_store.h"
#include "store/image_db.h"
#include "store/layer_store.h"

namespace shale::image {

class StoreImpl;

// A unit of store changes that is undone unless Commit()ed: driver layers, layerdb entries,
// blobs and image configs it created are removed in reverse order, and its staging dir
// tmp/txn-XXXXXX goes. Before each creation the object is noted in tmp/txn-XXXXXX/journal,
// so that if the process dies, the next Open() can undo what no image references.
class Txn {
 public:
  static Result<Txn> Begin(StoreImpl& s);
  Txn(Txn&& o) noexcept;
  Txn& operator=(Txn&&) = delete;
  ~Txn();

  const std::string& dir() const { return dir_; }
  Result<void> NoteDriverLayer(const std::string& id);
  Result<void> NoteLayer(const Digest& chain);
  Result<void> NoteBlob(const Digest& d);
  Result<void> NoteImage(const Digest& id);
  void Commit();

 private:
  Txn() = default;
  Result<void> Journal(std::string_view line);
  void Rollback();

  StoreImpl* s_ = nullptr;
  std::string dir_;
  UniqueFd journal_;
  std::vector<std::string> driver_layers_;
  std::vector<Digest> layers_, blobs_, images_;
  bool done_ = false;
};

// A layer unpacked into a fresh driver layer, not yet registered.
struct Unpacked {
  std::string cache_id;
  layer::ApplyResult res;
  std::string blob_tmp;   // the layer blob as received, in the txn dir ("" if not kept)
  std::string split_tmp;  // its tar-split, in the txn dir ("" if none)
};

class StoreImpl : public ImageStore {
 public:
  Result<void> Init(const std::string& root);

  Result<FileLock> Lock(FileLock::Mode mode) override;
  graph::GraphDriver& driver() override { return *driver_; }
  const std::string& root() const override { return root_; }
  Result<Image> Resolve(std::string_view ref) override;
  Result<std::vector<Image>> List() override;
  Result<std::vector<std::string>> LayerIds(const Image& img) override;
  Result<Image> Commit(const Image& base, const std::string& upper_layer_id,
                       const CommitOptions& opts) override;
  Result<Image> CommitBuildStep(const Image& base, const std::string& upper_layer_id,
                                const BuildStepOptions& opts) override;
  Result<void> AddContainerRef(const std::string& ctr_id, const Image& img,
                               const std::string& init_id, const std::string& mount_id) override;
  Result<void> RemoveContainerRef(const std::string& ctr_id) override;
  Result<nlohmann::json> InspectJson(const Image& img) override;
  Result<Image> Import(const std::string& source, const ImportOptions& opts) override;
  Result<LoadResult> Load(int fd, const std::string& name) override;
  Result<void> Save(const std::vector<std::string>& refs, ArchiveFormat format,
                    int out_fd) override;
  Result<void> Tag(const Image& img, std::string_view ref) override;
  Result<std::vector<std::string>> Remove(std::string_view ref, bool force) override;
  Result<std::vector<HistoryEntry>> History(const Image& img) override;
  Result<std::string> MountImage(const Image& img) override;
  Result<void> UnmountImage(const Image& img) override;
  Result<std::vector<std::string>> TagsOf(const Digest& id) override;
  Result<PullResult> Pull(std::string_view ref, const PullOptions& opts) override;
  // One attempt; `resumed` gets the ingest files it went on from.
  Result<PullResult> PullOnce(std::string_view ref, const PullOptions& opts,
                              std::vector<std::string>* resumed);
  Result<PushResult> Push(std::string_view ref, const PushOptions& opts) override;

  // --- shared by the verbs ---
  Result<Image> Get(const Digest& id);
  // Creates driver layer (random id) on parent_cache and extracts `fd` into it, writing
  // its tar-split to a temp file in the txn dir. If keep_blob and the input is compressed,
  // the bytes read are also written to a temp file in the txn dir.
  Result<Unpacked> UnpackFd(Txn& txn, const std::string& parent_cache, int fd, bool keep_blob,
                            const std::string& label, int64_t total);
  Result<Unpacked> UnpackStream(Txn& txn, const std::string& parent_cache,
                                const layer::ReadFn& read, bool keep_blob,
                                const std::string& label, int64_t total);
  // Writes the layerdb entry for `chain` with the tar-split (made from blob_tmp if the
  // unpack made none) and, for a compressed layer, moves the kept blob into blobs/. A plain
  // tar blob is not kept unless it cannot be split.
  Result<store::LayerRecord> Register(Txn& txn, const Unpacked& u, const Digest& chain,
                                      const Digest& parent_chain, const std::string& media_type);
  // Packs the container layer `upper_layer_id` into a new layer on `base` (commit.cc) and
  // returns its diffID; an existing layer with the same chainID is reused.
  Result<Digest> CommitUpper(Txn& txn, const Image& base, const std::string& upper_layer_id,
                             std::optional<int64_t> clamp_mtime);
  // Writes the config into imagedb and points `tags` at it.
  Result<Digest> RegisterImage(Txn& txn, const std::string& config,
                               const std::vector<std::string>& tags);
  // Sets tags (familiar "repo:tag") in repositories.json, moving them from other images.
  Result<void> SetTags(const Digest& id, const std::vector<std::string>& tags);
  // --- distribution metadata (push.cc), docker's image/overlay2/distribution/ ---
  // v2metadata-by-diffid/sha256/<diffID>: [{"Digest","MediaType","SourceRepository"}], the
  // compressed blobs known for a layer and where they were pulled from or pushed to.
  // image-manifests/sha256/<image id>: {"manifest","mediaType","repoDigests":[…]}.
  std::string distribution_dir() const { return root_ + "/image/overlay2/distribution"; }
  Result<nlohmann::json> LayerSources(const Digest& diff_id);
  Result<void> AddLayerSource(const Digest& diff_id, const Digest& blob,
                              const std::string& media_type, const std::string& repo);
  Result<nlohmann::json> ImageManifestInfo(const Digest& image_id);
  // rmi: drops the image's manifest record and manifest blob, and for removed layers whose
  // diffID no remaining layer has, the compressed blobs push made and their metadata.
  Result<void> ForgetDistribution(const Digest& image_id,
                                  const std::vector<store::LayerRecord>& removed);
  Result<void> SetImageManifest(const Digest& image_id, const Digest& manifest,
                                const std::string& media_type, const std::string& repo_digest,
                                const Digest& index = Digest());

  // Removes leftovers of commands that died (stale tmp/ entries). REQUIRES exclusive lock.
  void Recover();

  store::ContentStore& content() { return content_; }
  store::LayerStore& layers() { return layers_; }
  store::ImageDb& imagedb() { return imagedb_; }
  std::string repositories_path() const { return root_ + "/image/overlay2/repositories.json"; }
  // repositories.json for reading, parsed once per version of the file: every write replaces
  // it by rename, so its device, inode, size and mtime name its content. `run` resolved its
  // image twice, each time parsing the file twice (the tag lookup, then the image's tags):
  // four parses of a file that grows with every tag in the store. Writers Load their own.
  Result<const store::Repositories*> RepositoriesForReading();
  std::string tmp_dir() const { return root_ + "/tmp"; }
  // A new empty file in the txn dir; its path in *path.
  Result<UniqueFd> TxnFile(Txn& txn, const char* prefix, std::string* path);

 private:
  std::string root_;
  std::unique_ptr<graph::GraphDriver> driver_;
  store::ContentStore content_;
  store::LayerStore layers_;
  store::ImageDb imagedb_;
  struct RepositoriesVersion {  // all 0: no file
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const RepositoriesVersion&) const = default;
  };
  std::optional<std::pair<RepositoriesVersion, store::Repositories>> repositories_;
};

std::string RepoOfTag(const std::string& familiar);
std::string MediaTypeFor(layer::Compression c);

}  // namespace shale::image
