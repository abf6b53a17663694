#include "build/dockerignore.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "util/fs.h"

namespace shale::build {

std::string CleanPath(std::string_view path) {
  if (path.empty()) return ".";
  bool rooted = path[0] == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(c);  // a relative path may climb; a rooted one stops at "/"
      }
      continue;
    }
    parts.push_back(c);
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

std::vector<std::string> ReadDockerignore(std::string_view text) {
  std::vector<std::string> out;
  bool first = true;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    first = false;
    // A comment only with '#' in the first column, before trimming (docker's ReadAll).
    if (!line.empty() && line[0] == '#') continue;
    auto trim = [](std::string_view s) {
      while (!s.empty() && isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
      while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
      return s;
    };
    line = trim(line);
    if (line.empty()) continue;
    bool invert = line[0] == '!';
    if (invert) line = trim(line.substr(1));
    std::string p;
    if (!line.empty()) {
      p = CleanPath(line);
      if (p.size() > 1 && p[0] == '/') p.erase(0, 1);
    }
    out.push_back(invert ? "!" + p : p);
  }
  return out;
}

bool IgnoreMatcher::Pattern::Match(std::string_view path) const {
  switch (kind) {
    case Kind::kExact:
      return path == cleaned;
    case Kind::kPrefix:  // "dir/**": everything under dir/
      return path.substr(0, cleaned.size() - 2) == std::string_view(cleaned).substr(0, cleaned.size() - 2);
    case Kind::kSuffix: {  // "**/name": name at any depth
      std::string_view suffix = std::string_view(cleaned).substr(2);
      if (!suffix.empty() && suffix[0] == '/') suffix.remove_prefix(1);
      return path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
    }
    case Kind::kRegex:
      return std::regex_match(path.begin(), path.end(), re);
  }
  return false;
}

Result<IgnoreMatcher> IgnoreMatcher::Create(const std::vector<std::string>& patterns) {
  IgnoreMatcher m;
  for (const auto& raw : patterns) {
    std::string_view t = raw;
    while (!t.empty() && isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
    while (!t.empty() && isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
    if (t.empty()) continue;
    Pattern p;
    std::string s = CleanPath(t);
    if (s[0] == '!') {
      if (s.size() == 1) {
        return Error(Errc::kInvalidArgument, ".dockerignore: illegal exclusion pattern: \"!\"");
      }
      p.exception = true;
      m.has_exceptions_ = true;
      s.erase(0, 1);
    }
    p.cleaned = s;
    // The pattern -> regular expression translation of moby/patternmatcher.
    std::string re = "^";
    p.kind = Kind::kExact;
    int brackets = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      char ch = s[i];
      if (ch == '*') {
        if (i + 1 < s.size() && s[i + 1] == '*') {
          bool at_start = i == 0;
          ++i;
          if (i + 1 < s.size() && s[i + 1] == '/') ++i;  // "**/" is "**"
          if (i + 1 == s.size()) {
            if (p.kind == Kind::kExact) {
              p.kind = Kind::kPrefix;
            } else {
              re += ".*";
              p.kind = Kind::kRegex;
            }
          } else {
            re += "(.*/)?";
            p.kind = Kind::kRegex;
          }
          if (at_start) p.kind = Kind::kSuffix;
        } else {
          re += "[^/]*";
          p.kind = Kind::kRegex;
        }
      } else if (ch == '?') {
        re += "[^/]";
        p.kind = Kind::kRegex;
      } else if (std::string_view(".+()|{}$").find(ch) != std::string_view::npos) {
        re += '\\';
        re += ch;
      } else if (ch == '\\') {
        if (i + 1 < s.size()) {
          re += '\\';
          re += s[++i];
          p.kind = Kind::kRegex;
        } else {
          return Error(Errc::kInvalidArgument,
                       ".dockerignore: syntax error in pattern " + raw + " (trailing \\)");
        }
      } else if (ch == '[' || ch == ']') {
        brackets += ch == '[' ? 1 : -1;
        re += ch;
        p.kind = Kind::kRegex;
      } else {
        re += ch;
      }
    }
    if (brackets != 0) {
      return Error(Errc::kInvalidArgument,
                   ".dockerignore: syntax error in pattern " + raw + " (unbalanced [ ])");
    }
    if (p.kind == Kind::kRegex) {
      re += "$";
      // std::regex reports a bad expression by throwing; keep it inside this adapter.
      try {
        p.re = std::regex(re, std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return Error(Errc::kInvalidArgument, ".dockerignore: syntax error in pattern " + raw);
      }
    }
    m.patterns_.push_back(std::move(p));
  }
  return m;
}

bool IgnoreMatcher::Excluded(std::string_view path) const {
  // moby/patternmatcher MatchesOrParentMatches.
  bool matched = false;
  size_t slash = path.rfind('/');
  std::string_view parent = slash == std::string_view::npos ? "." : path.substr(0, slash);
  for (const auto& p : patterns_) {
    // An inclusion cannot change an already excluded path, nor an exception an included one.
    if (p.exception != matched) continue;
    bool match = p.Match(path);
    if (!match && parent != ".") {
      for (size_t i = 0; i <= parent.size(); ++i) {
        if (i == parent.size() || parent[i] == '/') {
          if (p.Match(parent.substr(0, i))) {
            match = true;
            break;
          }
        }
      }
    }
    if (match) matched = !p.exception;
  }
  return matched;
}

bool IgnoreMatcher::MayReinclude(std::string_view dir) const {
  std::string dir_slash = std::string(dir) + "/";
  for (const auto& p : patterns_) {
    if (p.exception && (p.cleaned + "/").compare(0, dir_slash.size(), dir_slash) == 0) return true;
  }
  return false;
}

namespace {

Result<void> Walk(const Dir& dir, const std::string& prefix, const IgnoreMatcher& m,
                  std::vector<ContextEntry>* out) {
  std::vector<std::string> names = TRY(ListDirAt(dir.fd(), prefix.empty() ? "." : prefix));
  for (const auto& name : names) {
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    struct stat st;
    if (fstatat(dir.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Error::FromErrno(errno, "stat build context " + rel);
    }
    EntryType type = S_ISDIR(st.st_mode)   ? EntryType::kDir
                     : S_ISREG(st.st_mode) ? EntryType::kFile
                     : S_ISLNK(st.st_mode) ? EntryType::kSymlink
                                           : EntryType::kOther;
    if (m.Excluded(rel)) {
      if (type != EntryType::kDir || !m.has_exceptions() || !m.MayReinclude(rel)) continue;
      Dir sub = TRY(dir.OpenDir(name));
      TRY(Walk(sub, rel, m, out));
      continue;
    }
    out->push_back({rel, type});
    if (type == EntryType::kDir) {
      Dir sub = TRY(dir.OpenDir(name));
      TRY(Walk(sub, rel, m, out));
    }
  }
  return Ok();
}

}  // namespace

Result<std::vector<ContextEntry>> ListContext(const Dir& root, const IgnoreMatcher& matcher) {
  std::vector<ContextEntry> out;
  TRY(Walk(root, "", matcher, &out));
  return out;
}

}  // namespace shale::build
