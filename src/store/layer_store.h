// Layer store: Docker's layerdb (image/overlay2/layerdb/).
//
//   sha256/<chainID>/diff             diffID ("sha256:…")
//   sha256/<chainID>/size             bytes of file content in the layer
//   sha256/<chainID>/cache-id         the graph driver's layer id (overlay2/<cache-id>)
//   sha256/<chainID>/parent           parent chainID (absent for a base layer)
//   sha256/<chainID>/blob-digest      the layer blob as received, kept in blobs/sha256
//   sha256/<chainID>/blob-media-type  its media type (tar, tar+gzip, tar+zstd)
//   sha256/<chainID>/blob-size        its size in bytes
//   sha256/<chainID>/tar-size         size of the uncompressed tar (for save without a pass)
//   sha256/<chainID>/tar-split.zst    (shale) the tar minus its file payloads (layer::Reassemble)
//   mounts/<container>/{init-id,mount-id,parent,image}   a container's layers
//
// Every entry is built in a staging directory under <root>/tmp and renamed into place, so a
// reader sees a whole entry or none. Thread-safety: writers hold the store lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/error.h"

namespace shale::store {

struct LayerRecord {
  Digest chain_id;
  Digest diff_id;
  Digest parent;               // empty for a base layer
  std::string cache_id;        // graph driver layer id
  int64_t size = 0;
  Digest blob_digest;          // empty when no blob is kept
  std::string blob_media_type;
  int64_t blob_size = 0;
  int64_t tar_size = 0;
  bool has_tar_split = false;  // Get: the entry holds tar-split.zst
  std::string tar_split_src;   // Put: a file (same file system) moved in as tar-split.zst
};

struct MountRecord {
  std::string container_id;
  std::string init_id;   // graph driver id of the init layer ("" if none)
  std::string mount_id;  // graph driver id of the read-write layer
  Digest parent;         // chainID of the image's top layer (empty for an empty image)
  Digest image;          // image id
};

class LayerStore {
 public:
  // root = <store>/image/overlay2/layerdb; tmp = <store>/tmp (same file system).
  static Result<LayerStore> Open(const std::string& root, const std::string& tmp);

  bool Has(const Digest& chain_id) const;
  // kNotFound naming the chainID; kCorrupt if a file is missing or malformed.
  Result<LayerRecord> Get(const Digest& chain_id) const;
  Result<std::vector<LayerRecord>> List() const;
  // Builds the entry under `staging_dir` and renames it into place. kAlreadyExists if
  // an entry for the chainID exists (the staged copy is removed).
  Result<void> Put(const LayerRecord& rec, const std::string& staging_dir);
  // Renames the entry out of the way, then removes it. Missing is success.
  Result<void> Remove(const Digest& chain_id);

  Result<void> PutMount(const MountRecord& rec, const std::string& staging_dir);
  Result<MountRecord> GetMount(const std::string& container_id) const;
  Result<std::vector<MountRecord>> ListMounts() const;
  Result<void> RemoveMount(const std::string& container_id);

  std::string EntryPath(const Digest& chain_id) const;
  std::string TarSplitPath(const Digest& chain_id) const {
    return EntryPath(chain_id) + "/tar-split.zst";
  }

 private:
  std::string root_;
  std::string tmp_;
};

}  // namespace shale::store
