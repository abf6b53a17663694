// The image store: the one place that composes the metadata stores (store/), layer
// archives (layer/) and the graph driver (graphdriver/). Load, import, save, tag, remove,
// mount, inspect and commit all go through here.
//
// On disk (docs/layout.md): overlay2/ (driver), image/overlay2/{imagedb,layerdb,
// repositories.json}, blobs/sha256/, tmp/. Every write is staged under tmp/ and renamed.
// Thread-safety: one ImageStore per process; mutating calls need Lock(kExclusive) held.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graphdriver/graph_driver.h"
#include "layer/layer.h"
#include "registry/client.h"
#include "util/digest.h"
#include "util/error.h"
#include "util/fs.h"

namespace shale::image {

struct Image {
  Digest id;                       // sha256 of the config JSON
  nlohmann::json config;           // the image config (docker/OCI shape)
  std::vector<std::string> repo_tags;  // "busybox:latest"
  std::vector<std::string> repo_digests;  // "127.0.0.1:5000/a/b@sha256:…" (pulled or pushed)
  std::vector<Digest> diff_ids;    // bottom first
  std::vector<Digest> chain_ids;   // bottom first
  std::vector<int64_t> layer_sizes;  // each layer's content size, as chain_ids
  std::string top_layer_id;        // graph driver id of the top layer ("" for no layers)
  int64_t created_unix = 0;
  int64_t size = 0;                // sum of the layers' content sizes
  std::optional<Digest> parent;    // the image a build step or commit was made on
};

struct CommitOptions {
  std::string message;             // -m
  std::string author;              // -a
  // Config as the committed container ran with (Env, Cmd, Entrypoint, WorkingDir, User...),
  // already merged with -c changes by the caller. Replaces the base image's "config".
  nlohmann::json container_config;
  std::string container_id;
  std::optional<int64_t> clamp_mtime;  // --reproducible / SOURCE_DATE_EPOCH
  std::string tag;                 // REPO[:TAG], may be empty
};

// One step of docker build (image/commit.cc).
struct BuildStepOptions {
  nlohmann::json config;       // the new image's "config" (Env, Cmd, WorkingDir, ...)
  std::string created_by;      // its history line, as docker writes it
  std::string author;          // MAINTAINER; "" keeps the base's
  // The start of a scratch stage: no history entry and no "created", so that the same
  // config always gives the same id.
  bool base_only = false;
};

// import: one layer from a tarball (plain or compressed), a directory or stdin ("-").
struct ImportOptions {
  std::string tag;                   // REPO[:TAG], may be empty
  std::vector<std::string> changes;  // -c "CMD ["sh"]", "ENV A=b", ...
  std::string message;               // -m; default "Imported from <source>"
};

struct LoadResult {
  std::vector<std::string> tags;  // "busybox:latest", in archive order
  std::vector<Digest> untagged;   // images loaded without a name
};

enum class ArchiveFormat { kDockerArchive, kOciArchive };

// pull / push progress, one event per layer step: status is docker's ("Pulling fs layer",
// "Downloading", "Extracting", "Pull complete", "Already exists", "Pushing", "Pushed",
// "Layer already exists", "Mounted from REPO"); id is the layer digest's short form.
using TransferProgress = std::function<void(const std::string& id, const std::string& status,
                                            int64_t done, int64_t total)>;

struct PullOptions {
  std::string platform;             // "os/arch[/variant]"; "" = the host's
  registry::ClientOptions client;
  TransferProgress progress;        // called from download threads too, one call at a time
  int max_downloads = 3;            // layers downloaded at once (docker's default)
};

struct PullResult {
  Digest image_id;
  std::string tag;                  // familiar "repo:tag" set, "" when pulled by digest only
  std::string repo_digest;          // "host/repo@sha256:..." (docker's Digest: line)
  int layers_fetched = 0;
  int layers_present = 0;
  int layers_resumed = 0;           // downloads that went on from what a killed pull left
  bool up_to_date = false;          // image and tag were already there
  registry::ClientStats stats;
};

struct PushOptions {
  registry::ClientOptions client;
  TransferProgress progress;
  // Unset: each layer goes as the blob kept from pull/load, else gzip. Set (podman's
  // --compression-format): every layer goes in that compression, made once and remembered.
  std::optional<layer::Compression> compression;
};

struct PushResult {
  Digest manifest_digest;
  int64_t manifest_size = 0;
  std::string tag;
  int blobs_uploaded = 0;
  int blobs_skipped = 0;            // already in the registry or mounted
  registry::ClientStats stats;
};

// One line of `history`, newest first.
struct HistoryEntry {
  std::string id;          // "sha256:…" for the image's own top entry, "<missing>" otherwise
  int64_t created_unix = 0;
  std::string created_by;
  int64_t size = 0;
  std::string comment;
  bool empty_layer = false;
};

// Applies Dockerfile-style changes (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL,
// VOLUME, STOPSIGNAL, ONBUILD) to an image config's "config" object, as docker import/commit
// --change do. kInvalidArgument naming the change otherwise.
Result<void> ApplyChanges(nlohmann::json& config, const std::vector<std::string>& changes);

// Normalises "busybox" -> "busybox:latest" (Docker's familiar form). kInvalidArgument.
Result<std::string> NormalizeTag(std::string_view ref);

class ImageStore {
 public:
  // Opens (creating the layout under `root` if needed). Takes no lock.
  static Result<std::unique_ptr<ImageStore>> Open(const std::string& root);
  virtual ~ImageStore() = default;

  // Store-wide lock (<root>/shale.lock): exclusive for writers, shared for readers.
  virtual Result<FileLock> Lock(FileLock::Mode mode) = 0;
  virtual graph::GraphDriver& driver() = 0;
  virtual const std::string& root() const = 0;

  // "busybox", "busybox:latest", "docker.io/library/busybox:1", full id, "sha256:<id>", or
  // an unambiguous id prefix. kNotFound naming the reference otherwise.
  virtual Result<Image> Resolve(std::string_view ref) = 0;
  virtual Result<std::vector<Image>> List() = 0;

  // Chain ids (bottom first) -> graph driver ids, for mounting and inspect.
  virtual Result<std::vector<std::string>> LayerIds(const Image& img) = 0;

  // Creates a new image from the container layer `upper_layer_id` (a kContainer driver
  // layer) on top of `base`. Packs only the upper dir. Returns the new image.
  virtual Result<Image> Commit(const Image& base, const std::string& upper_layer_id,
                               const CommitOptions& opts) = 0;

  // docker build's commit of one step: a new image on `base` (a default Image = scratch)
  // with opts.config and one history entry, plus a layer from the container layer
  // `upper_layer_id`, packed as Commit does. No layer when `upper_layer_id` is "" or its
  // upper dir is empty: the entry is then empty_layer, as docker does for an empty diff.
  // REQUIRES Lock(kExclusive).
  virtual Result<Image> CommitBuildStep(const Image& base, const std::string& upper_layer_id,
                                        const BuildStepOptions& opts) = 0;

  // Records that container `ctr_id` uses `img` through driver layers init_id/mount_id
  // (layerdb/mounts/<ctr_id>/{init-id,mount-id,parent,image}); such images and their layers
  // are not removed by rmi.
  virtual Result<void> AddContainerRef(const std::string& ctr_id, const Image& img,
                                       const std::string& init_id,
                                       const std::string& mount_id) = 0;
  virtual Result<void> RemoveContainerRef(const std::string& ctr_id) = 0;

  // --- verbs (image_commands.cc). Mutating ones REQUIRE Lock(kExclusive). ---

  // docker import. Returns the new image (tagged if opts.tag is set).
  virtual Result<Image> Import(const std::string& source, const ImportOptions& opts) = 0;
  // docker load: docker-archive / podman save archives and OCI image-layout archives, from
  // a file or pipe. All or nothing: a failed load leaves no trace (kCorrupt on a digest
  // mismatch, kInvalidArgument on a hostile or malformed archive, naming the entry).
  virtual Result<LoadResult> Load(int fd, const std::string& name) = 0;
  // docker save of the named images (refs as given by the user) to out_fd.
  virtual Result<void> Save(const std::vector<std::string>& refs, ArchiveFormat format,
                            int out_fd) = 0;
  // Points REPO[:TAG] at img (moving it from any other image).
  virtual Result<void> Tag(const Image& img, std::string_view ref) = 0;
  // docker rmi: returns the lines to print ("Untagged: busybox:latest", "Deleted: sha256:…").
  // kBusy with Docker's conflict messages when a container uses the image (unless force)
  // or an id names an image with several tags (unless force).
  virtual Result<std::vector<std::string>> Remove(std::string_view ref, bool force) = 0;
  virtual Result<std::vector<HistoryEntry>> History(const Image& img) = 0;
  // Read-only view of the image (overlay of its layers); returns the merged directory.
  virtual Result<std::string> MountImage(const Image& img) = 0;
  virtual Result<void> UnmountImage(const Image& img) = 0;
  // Tags of an image, as Docker prints them ("busybox:latest").
  virtual Result<std::vector<std::string>> TagsOf(const Digest& id) = 0;

  // docker pull: manifest (an index resolved to opts.platform) -> config -> layers, each
  // streamed from the registry, hashed, inflated and extracted in one pass; all digests
  // verified; the image and tag appear only at the end (a failed or killed pull leaves no
  // image, tag or layer). REQUIRES Lock(kExclusive).
  virtual Result<PullResult> Pull(std::string_view ref, const PullOptions& opts) = 0;
  // docker push of REPO:TAG (the reference names the registry): blobs the registry has are
  // skipped, blobs another repository of it holds are mounted, the rest uploaded; then the
  // config and a Docker schema2 manifest (a pulled image's own manifest when all its blobs
  // are kept, so its digest stays). REQUIRES Lock(kExclusive) (layers may get a kept blob).
  virtual Result<PushResult> Push(std::string_view ref, const PushOptions& opts) = 0;

  // Docker's image inspect JSON (Id, RepoTags, Created, Config, RootFS, GraphDriver...).
  virtual Result<nlohmann::json> InspectJson(const Image& img) = 0;
};

}  // namespace shale::image
