// Private helpers of the layer module: streaming decoders and small fd utilities.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "layer/layer.h"
#include "util/error.h"

namespace shale::layer::internal {

// A streaming decompressor (gzip via ISA-L, zstd via libzstd).
class Decoder {
 public:
  virtual ~Decoder() = default;
  // Consumes some of `in` (advancing it) and writes up to `cap` bytes to `out`; sets
  // *produced. Call again with the rest (or with empty input while output came out full).
  virtual Result<void> Decode(std::string_view* in, char* out, size_t cap, size_t* produced) = 0;
  // kCorrupt unless the stream ended at a member/frame boundary.
  virtual Result<void> Finish() = 0;
};

// REQUIRES: c != kNone.
std::unique_ptr<Decoder> MakeDecoder(Compression c);

// Writes all of data to fd; names `what` on error.
Result<void> WriteFull(int fd, const char* data, size_t n, std::string_view what);

// Extended attributes of `name` in dirfd (not following a symlink leaf), in name order.
struct Xattr {
  std::string name;
  std::string value;
};
Result<std::vector<Xattr>> ListXattrs(int dirfd, const char* name, std::string_view shown);
// "/proc/self/fd/<dirfd>/<name>" for the l*xattr calls, which have no *at form.
std::string ProcPath(int dirfd, const char* name);

// openat2(dirfd, path, flags, resolve), also for a path longer than PATH_MAX (a layer may
// hold one; the kernel takes at most PATH_MAX per call): the leading directories are then
// opened in pieces with the same resolve flags. Returns the fd or -1 with errno set.
long OpenBeneath(int dirfd, const std::string& path, int flags, uint64_t resolve);

// First bytes of a (decompressed) tar-split; see docs/layout.md.
inline constexpr std::string_view kSplitMagic = "shale-tar-split/1\n";

inline bool IsWhiteoutDevice(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == 0;
}

}  // namespace shale::layer::internal
