// The engine's cache of compiled seccomp programs (runtime::SeccompCache): one file per
// distinct filter under <root>/seccomp, named by the sha256 of its SeccompCacheKey.
#pragma once

#include <optional>
#include <string>

#include "runtime/seccomp.h"

namespace shale::container {

class SeccompCacheDir : public runtime::SeccompCache {
 public:
  explicit SeccompCacheDir(std::string dir) : dir_(std::move(dir)) {}
  // A file that does not read back as a program (torn, truncated, not ours) is a miss.
  std::optional<runtime::SeccompProgram> Get(const std::string& key) override;
  // Made when missing; written by rename, without fsync (losing it costs one compile). A
  // cache that cannot be written is skipped.
  void Put(const std::string& key, const runtime::SeccompProgram& prog) override;

 private:
  std::string PathOf(const std::string& key) const;
  std::string dir_;
};

}  // namespace shale::container
