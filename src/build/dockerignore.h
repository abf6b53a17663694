// .dockerignore: docker's pattern rules (moby/patternmatcher) and the list of context
// files a build may COPY.
//
// Rules, as docker applies them:
//  - one pattern a line; a line whose first character is '#' is a comment; blanks around
//    a pattern are trimmed; a leading '!' makes an exception (re-include).
//  - patterns are cleaned like Go's filepath.Clean ("./a//b/" -> "a/b") and a leading "/"
//    is dropped: every pattern is relative to the context root.
//  - '*' and '?' match within one path component, "[a-z]" a class, '\' escapes; "**"
//    matches any number of components (zero included).
//  - a path is excluded if a pattern matches it or one of its parent directories; the
//    last pattern that matches decides (so "!x" after "*" re-includes x).
//  - an excluded directory is still walked when an exception pattern starts with it
//    ("!dir/keep"), so files inside it can come back; the directory itself is not listed.
//  - The Dockerfile and .dockerignore are read by the builder whatever the patterns say;
//    COPY sees them only if the patterns do not exclude them (docker sends both, then
//    removes the ones the patterns exclude).
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "util/dir.h"
#include "util/error.h"

namespace shale::build {

// Go's filepath.Clean for '/'-separated paths ("" -> ".").
std::string CleanPath(std::string_view path);

// The patterns of a .dockerignore file, cleaned, '!' kept in front of exceptions.
std::vector<std::string> ReadDockerignore(std::string_view text);

class IgnoreMatcher {
 public:
  // kInvalidArgument "illegal exclusion pattern: \"!\"" or "syntax error in pattern X".
  static Result<IgnoreMatcher> Create(const std::vector<std::string>& patterns);

  // Whether `path` (relative, '/'-separated, cleaned) is excluded, by itself or through a
  // parent directory.
  bool Excluded(std::string_view path) const;
  // Whether an exception could re-include something below the excluded directory `dir`.
  bool MayReinclude(std::string_view dir) const;
  bool has_exceptions() const { return has_exceptions_; }

 private:
  enum class Kind { kExact, kPrefix, kSuffix, kRegex };
  struct Pattern {
    std::string cleaned;
    bool exception = false;
    Kind kind = Kind::kExact;
    std::regex re;
    bool Match(std::string_view path) const;
  };
  std::vector<Pattern> patterns_;
  bool has_exceptions_ = false;
};

enum class EntryType { kFile, kDir, kSymlink, kOther };

struct ContextEntry {
  std::string path;  // relative to the context, '/'-separated, e.g. "src/main.c"
  EntryType type;
};

// Every entry of the context under `root` that the patterns do not exclude, in the order
// docker's walk visits them (lexical, parents first). Never follows symlinks; opens
// directories through `root` (rooted), so nothing outside the context is read.
Result<std::vector<ContextEntry>> ListContext(const Dir& root, const IgnoreMatcher& matcher);

}  // namespace shale::build
