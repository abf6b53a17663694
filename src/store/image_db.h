// Image metadata as Docker keeps it (image/overlay2/):
//   imagedb/content/sha256/<id>                 the config JSON; id = sha256 of these bytes
//   imagedb/metadata/sha256/<id>/lastUpdated    LastTagTime (RFC 3339)
//   imagedb/metadata/sha256/<id>/parent         "sha256:<id>" of the image a build step or a
//                                               commit was made on (docker's parent link)
//   repositories.json  {"Repositories":{"busybox":{"busybox:latest":"sha256:…"}}}
// Every write is atomic (temp file, fsync, rename). Thread-safety: writers hold the store lock.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/error.h"

namespace shale::store {

class ImageDb {
 public:
  // root = <store>/image/overlay2/imagedb
  static Result<ImageDb> Open(const std::string& root);
  // Stores the exact bytes; returns their sha256 (the image id). `*created` false if present.
  Result<Digest> Put(std::string_view config, bool* created = nullptr);
  bool Has(const Digest& id) const;
  // kNotFound; kCorrupt if the bytes no longer match the id.
  Result<std::string> Get(const Digest& id) const;
  Result<std::vector<Digest>> List() const;
  Result<void> Delete(const Digest& id);
  Result<void> SetLastTagTime(const Digest& id, const std::string& rfc3339);
  std::string LastTagTime(const Digest& id) const;  // "" if never tagged
  Result<void> SetParent(const Digest& id, const Digest& parent);
  std::optional<Digest> Parent(const Digest& id) const;  // nullopt: none recorded

 private:
  std::string root_;
};

// Tags -> image ids. Keys are Docker's familiar forms: repository "busybox",
// reference "busybox:latest".
class Repositories {
 public:
  // Missing file = empty. kCorrupt if the JSON is malformed.
  static Result<Repositories> Load(const std::string& path);
  // Atomic write of the whole file.
  Result<void> Save(const std::string& path) const;

  void Set(const std::string& repo, const std::string& ref, const Digest& id);
  // Removes `ref`; returns the id it named.
  std::optional<Digest> Remove(const std::string& ref);
  std::optional<Digest> Lookup(const std::string& ref) const;
  // References naming `id`, sorted.
  std::vector<std::string> RefsFor(const Digest& id) const;
  const std::map<std::string, std::map<std::string, std::string>>& repos() const {
    return repos_;
  }
  std::string ToJson() const;

 private:
  std::map<std::string, std::map<std::string, std::string>> repos_;
};

}  // namespace shale::store
