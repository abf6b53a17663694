// Layer archives <-> directories. Functions over a Dir and a byte stream; knows nothing of
// stores or drivers (containerd pkg/archive).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/dir.h"
#include "util/error.h"

namespace shale::layer {

enum class Compression { kNone, kGzip, kZstd };
std::string_view CompressionName(Compression c);  // "none", "gzip", "zstd"
// From the first bytes of a stream (magic numbers).
Compression DetectCompression(std::string_view head);

// Pulls up to `n` bytes into buf; returns 0 at end of stream.
using ReadFn = std::function<Result<size_t>(char* buf, size_t n)>;
// Called with the count of compressed bytes consumed so far.
using ProgressFn = std::function<void(int64_t)>;

enum class Whiteouts {
  kOverlay,  // .wh.NAME -> char device 0:0 NAME; .wh..wh..opq -> trusted.overlay.opaque=y
  kPlain,    // whiteouts delete what they name (flattening into one dir)
};

struct ApplyOptions {
  Whiteouts whiteouts = Whiteouts::kOverlay;
  ProgressFn progress;
  // If >= 0, every input byte (as read, still compressed) is also written here, so a caller
  // can keep the original blob while it extracts in one pass.
  int tee_fd = -1;
  // Tee only a compressed stream (a plain tar is kept as a tar-split instead).
  bool tee_compressed_only = false;
  // syncfs() the root's file system once at the end (the store commits the layer after it).
  // Tests and benchmarks may turn it off.
  bool sync = true;
  // If >= 0, the layer's tar-split is written here (zstd; format in docs/layout.md): the
  // tar's bytes other than regular-file payloads, and for each payload a reference to the
  // file as extracted. With the diff dir it rebuilds the exact tar (Reassemble). Payloads
  // that cannot be read back from the diff dir (sparse files, files the same tar replaces
  // or deletes later, entries not extracted) are kept in the tar-split as raw bytes.
  int tar_split_fd = -1;
  // Also let libarchive undo the compressions a layer never has but a Dockerfile ADD source
  // may (bzip2, xz: docker's ADD extracts those too). The diff_id is then of the input as
  // given, not of the tar: for extraction into a directory only.
  bool any_compression = false;
};

struct ApplyResult {
  Digest diff_id;             // sha256 of the uncompressed tar
  Digest digest;              // sha256 of the bytes as read (== diff_id when uncompressed)
  int64_t compressed_size = 0;
  int64_t uncompressed_size = 0;
  int64_t content_size = 0;   // bytes of regular file content written
  Compression compression = Compression::kNone;
};

// Extracts a (possibly gzip/zstd compressed) layer tar into root. `read` and `progress` run
// on the calling thread; extraction runs on a worker thread (joined before returning). Hostile input: every entry
// is resolved inside root; entries that would land outside (.., symlink then write, hardlink
// to outside, whiteout naming ..) fail with kInvalidArgument naming the entry. Absolute names
// are taken relative to root. Keeps owners, modes, mtimes, xattrs, links, device nodes.
Result<ApplyResult> Apply(const Dir& root, const ReadFn& read, const ApplyOptions& opts);
Result<ApplyResult> ApplyFd(const Dir& root, int fd, const ApplyOptions& opts);

// The tar-split of an uncompressed tar whose files are already in a diff dir (commit: the
// diff dir is a copy of what was packed), parsing only. kUnsupported if the tar replaces or
// deletes one of its own files (nothing to read those payloads back from).
Result<ApplyResult> SplitTar(int tar_fd, int split_fd);

// Rebuilds a layer's tar from its tar-split and its diff dir into out_fd, hashing as it
// writes; kCorrupt if a referenced file is missing or changed size, or if the bytes written
// do not have the recorded size and diffID (the caller names the layer). out_fd may be a pipe.
struct WriteResult;
Result<WriteResult> Reassemble(const Dir& diff, int split_fd, int out_fd);

struct WriteOptions {
  // Clamp every mtime to at most this (SOURCE_DATE_EPOCH / --reproducible).
  std::optional<int64_t> clamp_mtime;
};

struct WriteResult {
  Digest diff_id;  // sha256 of the tar written
  int64_t size = 0;
};

// Writes a layer tar of a diff dir (an overlay upper dir): entries sorted by path, fixed PAX
// format, overlay whiteouts (c 0/0) as .wh.NAME, opaque dirs as .wh..wh..opq.
// Cost grows with the entries of `upper`, never with the layers below it.
Result<WriteResult> WriteDiff(const Dir& upper, int out_fd, const WriteOptions& opts = {});
// WriteDiff that also copies `upper` into `copy` (an empty dir) from the same reads, as
// CopyDiff would (owners, modes, times, all xattrs, hardlinks, devices, whiteouts): the copy
// holds exactly the payloads the tar holds even if `upper` changes meanwhile (commit of a
// running container). Sockets are neither packed nor copied. An entry removed during the
// walk is left out of both; kBusy if one changes type while it is packed.
Result<WriteResult> WriteDiffAndCopy(const Dir& upper, int out_fd, const Dir& copy,
                                     const WriteOptions& opts = {});
// Writes a plain tar of a whole tree (export of a merged rootfs): sorted, no whiteout mapping.
Result<WriteResult> WriteTree(const Dir& root, int out_fd, const WriteOptions& opts = {});

// Copies a diff dir to another (empty) dir keeping everything (owners, modes, times, xattrs
// including overlay whiteouts/opaque, hardlinks, devices). copy_file_range for contents.
Result<void> CopyDiff(const Dir& from, const Dir& to);

// docker diff: A (added), C (changed), D (deleted) for an upper dir over its lower dirs
// (absolute paths, top first). Sorted by path.
struct Change {
  char kind;         // 'A', 'C', 'D'
  std::string path;  // "/tmp/c1.txt"
};
Result<std::vector<Change>> Changes(const Dir& upper, const std::vector<std::string>& lowers);

// Streams a compressed blob out as an uncompressed tar (docker-archive save of a gzip layer).
Result<void> Decompress(int in_fd, int out_fd);
// Compresses in_fd to out_fd with gzip; returns sha256 of the output.
Result<Digest> GzipCompress(int in_fd, int out_fd, Digest* uncompressed_digest = nullptr);
// The same with zstd (level 3, with a content checksum), for push --compression-format zstd.
Result<Digest> ZstdCompress(int in_fd, int out_fd, Digest* uncompressed_digest = nullptr);

// Overlay whiteout names: ".wh.foo" <-> "foo"; ".wh..wh..opq" is the opaque marker.
inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
inline constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

}  // namespace shale::layer
