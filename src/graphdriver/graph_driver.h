// The graph driver: layer directories and union mounts, in Docker's overlay2 layout.
//
// Lifecycle (containerd's Snapshotter in Docker's vocabulary):
//   image layer:  Create(L1, "", kImage); apply the tar into OpenDiffDir(L1).
//   next layer:   Create(L2, L1, kImage); apply into OpenDiffDir(L2).  (L1 gets "committed")
//   container:    Create(C-init, Ltop, kInit); fill placeholders; Create(C, C-init, kContainer);
//                 Mount(C) -> overlay2/C/merged with lowerdir=C-init:Ltop:...  upper=C/diff.
//   commit:       pack OpenDiffDir(C) (the upper dir) into a new layer; never C-init.
//   image view:   Mount(Ltop) -> read-only overlay of Ltop and its parents (bind for a base).
//
// Layout under root (= <--root>/overlay2), exactly Docker's:
//   l/<26 chars> -> ../<id>/diff         short names
//   <id>/diff/  <id>/link  <id>/lower ("l/A:l/B", top first; absent for a base layer)
//   <id>/work/ (layers with a parent)  <id>/merged/ (created when mounted)
//   <id>/committed (written into a parent once a child is created on it)
// Thread-safety: not thread-safe. Callers hold the store lock. Knows nothing of images,
// digests or registries.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sys/mount.h"
#include "util/dir.h"
#include "util/error.h"

namespace shale::graph {

enum class LayerKind { kImage, kInit, kContainer };

struct MountOptions {
  // overlayfs "volatile" (Linux 5.10+): the kernel skips every sync of the upper dir (fsync
  // and syncfs inside the container, and the sync at unmount). For throwaway containers
  // (run --rm), as podman does; ignored for read-only views and where unsupported.
  bool volatile_upper = false;
};

struct LayerInfo {
  std::string id;
  std::string parent;             // "" for a base layer
  std::vector<std::string> chain; // this layer's parents, nearest first (not including id)
};

class GraphDriver {
 public:
  virtual ~GraphDriver() = default;
  virtual std::string_view Name() const = 0;  // "overlay2"

  // Creates empty layer `id` on top of `parent` ("" = none) atomically: builds it under a
  // temporary name, then renames it to <id>. kAlreadyExists if `id` exists; kNotFound if
  // `parent` does not. kImage layers are durable (fsync'd); kInit and kContainer layers are
  // not synced (as Docker): they appear atomically but may be lost in a power loss.
  virtual Result<void> Create(std::string_view id, std::string_view parent, LayerKind kind) = 0;
  virtual bool Exists(std::string_view id) const = 0;
  // The directory holding only this layer's own changes (overlay2/<id>/diff).
  virtual Result<Dir> OpenDiffDir(std::string_view id) const = 0;
  virtual std::string DiffPath(std::string_view id) const = 0;
  // What to mount to see `id` with all its parents. Pure: computes, never mounts.
  // kContainer layers get upper/work; others are read-only.
  virtual Result<sys::OverlaySpec> MountSpecFor(std::string_view id) const = 0;
  // Mounts `id` at overlay2/<id>/merged (creating it) and returns that path. Idempotent:
  // an existing mount there is reused (no reference count: callers count users). A base layer
  // with no parent is bind-mounted read-only. Writable only for kContainer layers: overlay2
  // marks kImage/kInit layers with Docker's `committed` file at Create (see overlay2.h), so
  // fill an init layer through OpenDiffDir, not through a mount.
  virtual Result<std::string> Mount(std::string_view id) = 0;
  // Mount with options; drivers without them mount as Mount(id).
  virtual Result<std::string> Mount(std::string_view id, const MountOptions& opts) {
    return Mount(id);
  }
  // Unmounts overlay2/<id>/merged if mounted and removes the merged dir. Missing is fine.
  virtual Result<void> Unmount(std::string_view id) = 0;
  virtual Result<LayerInfo> Stat(std::string_view id) const = 0;
  // Removes the layer dir and its short link. kBusy if mounted or if another layer is built
  // on it (remove children first). Missing is success.
  virtual Result<void> Remove(std::string_view id) = 0;
  // Removes a stack of layers top first: ids[i] is built on ids[i+1] and is the only layer
  // built on it (a container's read-write layer on its init layer, which the caller made
  // so). As Remove one after the other, stopping at the first error; but a layer whose
  // child is the one before it in `ids` need not be checked against the whole store, and a
  // driver may delete the contents of several at once (overlay2: once renamed away).
  virtual Result<void> RemoveStack(const std::vector<std::string>& ids) {
    for (const std::string& id : ids) TRY(Remove(id));
    return Ok();
  }
  // For inspect: LowerDir (absent for a base layer), UpperDir, MergedDir, WorkDir.
  virtual Result<std::map<std::string, std::string>> Metadata(std::string_view id) const = 0;
  virtual std::string Root() const = 0;
  // Removes what an interrupted Create or Remove left behind (temporary layer dirs).
  // REQUIRES: no other process uses the driver (the caller holds the store lock exclusively).
  virtual Result<void> RemoveStaging() { return Ok(); }
};

// root = <--root>/overlay2 (created if missing). kUnsupported if overlayfs is unavailable.
Result<std::unique_ptr<GraphDriver>> NewOverlay2(const std::string& root);

}  // namespace shale::graph
