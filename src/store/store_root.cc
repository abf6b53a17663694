#include "store/store_root.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <set>
#include <vector>

#include "util/fs.h"

namespace shale::store {
namespace {

// Top-level names a store made before the marker existed. A directory holding only these
// (and image/ and overlay2/ among them) is taken to be such a store and is marked.
const std::set<std::string>& LegacyNames() {
  static const std::set<std::string> names = {"blobs", "containers", "image",
                                              "overlay2", "tmp",        "shale.lock"};
  return names;
}

Error Refuse(const std::string& root, std::string_view why) {
  return Error(Errc::kInvalidArgument, "store root " + (root.empty() ? "\"\"" : root) + ": " +
                                           std::string(why));
}

Result<void> WriteMarker(const std::string& root) {
  nlohmann::json m = {{"format", "shale-store"}, {"version", kStoreVersion}};
  return WriteFileAtomic(root + "/" + std::string(kMarkerName), m.dump() + "\n", 0600);
}

Result<void> CheckMarker(const std::string& root, const std::string& path) {
  std::string text = TRY(ReadFile(path));
  auto m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!m.is_object() || m.value("format", "") != "shale-store" ||
      !m.contains("version") || !m["version"].is_number_integer())
    return Error(Errc::kCorrupt, "store root " + root + ": " + path +
                                     " is not a shale store marker; is this directory a store?");
  if (m["version"].get<int64_t>() > kStoreVersion)
    return Error(Errc::kCorrupt, "store root " + root + ": store version " +
                                     std::to_string(m["version"].get<int64_t>()) +
                                     " is newer than this shale understands (" +
                                     std::to_string(kStoreVersion) + "); upgrade shale");
  return Ok();
}

// chmod to `mode` if the permission bits differ; a missing path is fine.
Result<void> RestrictMode(const std::string& path, mode_t mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return Error::FromErrno(errno, "stat " + path);
  }
  if (!S_ISDIR(st.st_mode)) return Error(Errc::kCorrupt, path + ": not a directory");
  if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) != 0)
    return Error::FromErrno(errno, "chmod " + path);
  return Ok();
}

}  // namespace

bool IsStagingName(std::string_view name) {
  for (std::string_view p : kStagingPrefixes)
    if (name.size() > p.size() && name.substr(0, p.size()) == p) return true;
  return false;
}

bool IsStaleStagingEntry(const std::string& dir, std::string_view name) {
  if (!IsStagingName(name)) return false;
  if (name.substr(0, kIngestPrefix.size()) != kIngestPrefix) return true;
  struct stat st;
  if (::lstat((dir + "/" + std::string(name)).c_str(), &st) != 0) return false;  // gone
  if (!S_ISREG(st.st_mode)) return true;
  return ::time(nullptr) - st.st_mtime > kIngestKeepSeconds;
}

Result<void> PrepareRoot(const std::string& root) {
  if (root.empty()) return Refuse(root, "empty; give --root an absolute directory path");
  if (root[0] != '/') return Refuse(root, "not an absolute path");
  // Lexically "/" in any spelling ("//", "/./", "/tmp/.."), or a link to it.
  char resolved[PATH_MAX];
  if (::realpath(root.c_str(), resolved) != nullptr) {
    if (std::string_view(resolved) == "/")
      return Refuse(root, "is the file system root; choose a directory of its own, "
                          "e.g. /var/lib/shale");
  } else if (errno != ENOENT) {
    return Error::FromErrno(errno, "store root " + root);
  }
  std::string marker = root + "/" + std::string(kMarkerName);
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) {
    if (errno != ENOENT) return Error::FromErrno(errno, "store root " + root);
    // A new directory: it and any missing parents (the parents as usual, 0755).
    TRY(MakeDirsAbs(Dirname(root), 0755));
    if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST)
      return Error::FromErrno(errno, "store root: mkdir " + root);
    if (::realpath(root.c_str(), resolved) != nullptr && std::string_view(resolved) == "/")
      return Refuse(root, "is the file system root");
    // Someone may have raced us into it: fall through to the checks below.
  } else if (!S_ISDIR(st.st_mode)) {
    return Refuse(root, "exists and is not a directory");
  }
  if (::access(marker.c_str(), F_OK) == 0) {
    TRY(CheckMarker(root, marker));
  } else {
    std::vector<std::string> names = TRY(ListDir(root));
    bool legacy = !names.empty();
    for (const auto& n : names) legacy = legacy && LegacyNames().count(n) > 0;
    bool has_layout = std::find(names.begin(), names.end(), "image") != names.end() &&
                      std::find(names.begin(), names.end(), "overlay2") != names.end();
    if (!names.empty() && !(legacy && has_layout))
      return Refuse(root, "not a shale store (no " + std::string(kMarkerName) +
                              ") and not empty; shale makes a store only in a new or empty "
                              "directory, so that it never deletes what it did not make");
    TRY(WriteMarker(root));
  }
  TRY(RestrictMode(root, 0700));
  return Ok();
}

}  // namespace shale::store
