// The build cache: a step is reused when its parent image, its instruction (the history
// line with the build args it sees, and the config it leaves), its process environment and,
// for COPY/ADD, the digest of its sources are the same.
//
// An entry maps the key to an image id: <root>/image/overlay2/buildcache/<key>. The images
// are ordinary untagged images: removing one (rmi, prune) turns its entry into a miss, and
// the next build that makes the step again overwrites the entry.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace shale::build {

struct CacheKeyParts {
  std::string parent_id;               // "sha256:..." ("" = scratch)
  std::string created_by;              // the step's history line
  nlohmann::json config;               // the "config" after the step
  std::vector<std::string> run_env;    // RUN's environment (build args included)
  std::string sources;                 // COPY/ADD: HashPlan's digest; "" otherwise
};

// sha256 hex of the parts, each length-prefixed so that no two part lists collide.
std::string CacheKey(const CacheKeyParts& parts);

class BuildCache {
 public:
  explicit BuildCache(std::string dir) : dir_(std::move(dir)) {}
  // The image id recorded for `key`, if any (the caller checks the image still exists).
  std::optional<std::string> Get(const std::string& key) const;
  // Records `key` -> `image_id` atomically (temp file, fsync, rename).
  Result<void> Put(const std::string& key, const std::string& image_id);
  // Removes the entries whose image id `gone` says is gone (prune). Entries that cannot be
  // read go too.
  Result<void> DropIf(const std::function<bool(const std::string& image_id)>& gone);

 private:
  std::string dir_;
};

}  // namespace shale::build
