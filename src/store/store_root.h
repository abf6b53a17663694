// The store's root directory: which directories may become a store, the marker a store
// writes about itself, and the names shale creates in its staging dir tmp/.
//
// Why this exists: a store root came from a flag (--root ""; --root /var) and recovery then
// deleted everything in <root>/tmp, which was the host's /tmp. Now a directory becomes a
// store only when it is new or empty, or already carries the marker, and recovery deletes
// only names with a staging prefix that shale itself creates (IsStagingName).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.h"

namespace shale::store {

// <root>/shale-store.json: {"format":"shale-store","version":1}, written atomically when the
// store is created.
inline constexpr std::string_view kMarkerName = "shale-store.json";
inline constexpr int kStoreVersion = 1;

// Makes `root` ready to hold a store, or says why it cannot:
//  - kInvalidArgument: "" or a relative path; "/" or a path that resolves to "/"; a path that
//    exists and is not a directory; a non-empty directory without the marker (unless every
//    entry in it is one that a store made before the marker existed: blobs, containers,
//    image, overlay2, tmp, shale.lock, with image/ and overlay2/ present);
//  - kCorrupt: a marker that is not shale's, or names a newer version.
// A new or empty directory is created (0700) and marked. The root is made 0700 on every
// open (the graph driver does the same for overlay2/), since overlay's upperdir=/lowerdir=
// paths are published in /proc/*/mountinfo and a setuid file in a layer must not be
// reachable by other users through them (CVE-2021-41091).
Result<void> PrepareRoot(const std::string& root);

// The prefixes of every entry shale creates directly in <root>/tmp. Recovery removes only
// entries whose names start with one of them (and nothing else it finds there).
inline constexpr std::string_view kStagingPrefixes[] = {
    "txn-",     // image::Txn: a journaled unit of store changes
    "save-",    // image save: the archive being assembled
    "gone-",    // store::LayerStore: an entry renamed away before its removal
    "layer-",   // store::LayerStore: a layerdb entry being written
    "mount-",   // store::LayerStore: a container's mount record being written
    "blob-",    // store::ContentStore: a blob being written
    "spool-",   // cli: stdin spooled before the lock is taken (normally unlinked at once)
    "ingest-",  // registry pull: blobs being downloaded (kept for a resume, see below)
};
bool IsStagingName(std::string_view name);

// An ingest- file of a pull that died is where the next pull of that blob resumes (with
// Range), so recovery leaves it for a day after its last write, and removes it after.
inline constexpr std::string_view kIngestPrefix = "ingest-";
inline constexpr int64_t kIngestKeepSeconds = 24 * 3600;
// True for a staging entry that recovery should remove now: every staging name except an
// ingest- file written to within kIngestKeepSeconds (`dir` is the staging dir).
bool IsStaleStagingEntry(const std::string& dir, std::string_view name);

}  // namespace shale::store
