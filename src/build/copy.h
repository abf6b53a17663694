// COPY and ADD: which files a source names, where they land, their content digest (for
// the cache) and the copy itself.
//
// Sources are resolved in a rooted tree (the build context, or another stage's or image's
// merged view): ".." cannot climb out of it and a symlink is followed inside it, never
// outside. Only entries of the tree's listing are copied (for the context: what
// .dockerignore leaves). The destination is written through a rooted Dir on the container's
// merged rootfs, so a symlink in the image cannot redirect a write outside it.
//
// Destination rules, docker's (the Dockerfile reference, COPY):
//  - a relative dest is relative to WORKDIR; a trailing "/" is kept;
//  - several sources (after wildcard expansion, or several arguments) need a dest ending
//    in "/";
//  - a file goes to dest/<name> when dest ends in "/" or is an existing directory, else to
//    dest itself;
//  - a directory's contents (not the directory itself) go into dest;
//  - files and new directories are owned by 0:0 unless --chown; modes are kept unless
//    --chmod; new parent directories are 0755.
//  - ADD of a local tar (plain, gzip, bzip2, xz, zstd) extracts it into dest.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "build/dockerignore.h"
#include "util/dir.h"
#include "util/error.h"

namespace shale::build {

// The destination made absolute against `workdir` ("" = "/"), cleaned, trailing "/" kept.
std::string NormalizeDest(std::string_view dest, std::string_view workdir);
// Where a file named `name` goes for `dest` (normalized).
std::string FileTarget(std::string_view dest, std::string_view name, bool dest_is_dir);
bool HasWildcard(std::string_view s);

// A rooted tree to copy from, with the entries that may be copied.
class SourceTree {
 public:
  // `root` is opened once; `entries` as ListContext gives them (parents first).
  SourceTree(Dir root, std::vector<ContextEntry> entries);
  const Dir& root() const { return root_; }
  // The entry at `rel` ("" = the root itself), if listed.
  const ContextEntry* Find(std::string_view rel) const;
  // Listed entries strictly below `dir` ("" = all), in listing order.
  std::vector<const ContextEntry*> Below(std::string_view dir) const;
  const std::vector<ContextEntry>& entries() const { return entries_; }

 private:
  Dir root_;
  std::vector<ContextEntry> entries_;
  std::vector<size_t> sorted_;  // indexes into entries_ by path, for Find and Below
};

// One thing to copy: a tree entry, and its path relative to the destination.
struct CopyItem {
  const ContextEntry* entry = nullptr;  // nullptr: the source dir itself (for its mode)
  std::string from;                      // path in the tree
  std::string to;                        // path relative to the target ("" = the target)
};

// The sources of one COPY/ADD, resolved: each source's items and its target path.
struct CopyPlan {
  struct Source {
    std::string path;           // resolved path in the tree ("" = its root)
    bool is_dir = false;
    bool extract = false;       // ADD of a local archive
    std::string target;         // absolute path in the container (file, or dir for a dir)
    std::vector<CopyItem> items;
  };
  std::vector<Source> sources;
  std::string kind;             // "file", "dir" or "multi" (docker's history prefix)
};

// Resolves `srcs` in `tree` for `dest` (normalized; `dest_is_dir`: it is a directory in the
// container). `add`: archives are extracted. kInvalidArgument for a path outside the tree,
// several sources with a dest not ending in "/"; kNotFound naming a source that matches
// nothing (missing, or excluded by .dockerignore).
Result<CopyPlan> PlanCopy(const SourceTree& tree, const std::vector<std::string>& srcs,
                          const std::string& dest, bool dest_is_dir, bool add);

// sha256 over every item's name, type, mode, owner, size, link target and bytes (never its
// mtime), in plan order: the cache's view of the sources. Hex.
Result<std::string> HashPlan(const SourceTree& tree, const CopyPlan& plan);

struct CopyOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Copies the plan into `rootfs` (the container's merged view). `chmod`: --chmod.
Result<void> CopyPlanInto(const SourceTree& tree, const CopyPlan& plan, const Dir& rootfs,
                          const CopyOwner& owner, std::optional<mode_t> chmod);

}  // namespace shale::build
