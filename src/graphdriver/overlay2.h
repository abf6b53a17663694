// overlay2: Docker's overlay2 layout and mounts (see graph_driver.h for the layout).
//
// Read-only or read-write: the driver keeps no state Docker does not have. A layer mounts
// read-write (upper = <id>/diff, work = <id>/work) unless it holds a `committed` file, which is
// exactly Docker's rule. Docker writes `committed` into a parent when a child is made on it;
// shale also writes it into kImage and kInit layers when it creates them, so they are read-only
// from birth and only kContainer layers are ever mounted writable. Layer kind is therefore not
// stored anywhere else, and Docker reading a shale store sees the same meaning.
//
// Mount options, following Docker's overlay2: "index=off" when the overlay module has the
// index parameter (with index=on a lower dir shared by two mounts fails with EBUSY). Shale
// diffs layers by reading the upper dir directly (Docker's "native diff"), which is only right
// when overlay writes neither redirect xattrs nor metacopy-only files, so "redirect_dir=off" and
// "metacopy=off" are added too where the module turns them on by default (Docker instead switches
// to its slower naive diff when the kernel enables them).
//
// Remove refuses (kBusy) while the layer is mounted or while another layer's `lower` names it
// as its parent (one small file read per layer in the store; RemoveStack skips that for a
// layer whose only child, the one before it in the stack, goes first). Stale ".tmp-*" / ".rm-*" dirs
// left by a crash are not layers (names starting with '.' are never valid ids): they are
// ignored, and RemoveStaging() deletes them when the store's recovery holds the lock.
#pragma once

#include <string>
#include <string_view>

namespace shale::graph::overlay2 {

constexpr size_t kShortNameLength = 26;

// 26 characters of RFC 4648 base32 (A-Z, 2-7) from 16 random bytes, as Docker's generateID.
std::string NewShortName();

// True if `id` can name a layer directory: non-empty, at most 255 bytes, no '/', not starting
// with '.', and not "l" (the short-link directory).
bool ValidLayerId(std::string_view id);

}  // namespace shale::graph::overlay2
