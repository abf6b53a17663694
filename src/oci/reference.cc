#include "oci/reference.h"

#include <string>
#include <string_view>

namespace shale::oci {
namespace {

// distribution/reference grammar, matched by hand: std::regex took ~0.8 ms to compile the
// three patterns, on every `run` (the reference is parsed before the container is made).
bool LowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool Alnum(char c) { return LowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
bool IsComponent(std::string_view c) {
  size_t i = 0;
  while (true) {
    size_t run = i;
    while (i < c.size() && LowerAlnum(c[i])) ++i;
    if (i == run) return false;  // a separator must be followed by [a-z0-9]+
    if (i == c.size()) return true;
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      i += (i + 1 < c.size() && c[i + 1] == '_') ? 2 : 1;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
  }
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool IsTag(std::string_view t) {
  if (t.empty() || t.size() > 128 || !(Alnum(t[0]) || t[0] == '_')) return false;
  for (char c : t.substr(1))
    if (!(Alnum(c) || c == '_' || c == '.' || c == '-')) return false;
  return true;
}

// label(\.label)*(:[0-9]+)?, a label being [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool IsDomain(std::string_view d) {
  if (size_t colon = d.find(':'); colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port)
      if (c < '0' || c > '9') return false;
    d = d.substr(0, colon);
  }
  size_t start = 0;
  while (true) {
    size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? d.npos : dot - start);
    if (label.empty() || !Alnum(label.front()) || !Alnum(label.back())) return false;
    for (char c : label)
      if (!(Alnum(c) || c == '-')) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

Error Bad(std::string_view s, std::string_view why) {
  return Error(Errc::kInvalidArgument,
               "invalid reference format \"" + std::string(s) + "\": " + std::string(why));
}

}  // namespace

std::string Reference::FamiliarName() const {
  if (domain == "docker.io") {
    if (path.rfind("library/", 0) == 0 && path.find('/', 8) == std::string::npos)
      return path.substr(8);
    return path;
  }
  return domain + "/" + path;
}

std::string Reference::FamiliarString() const {
  std::string s = FamiliarName();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::FullString() const {
  std::string s = FullName();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

Result<Reference> ParseReference(std::string_view s) {
  if (s.empty()) return Bad(s, "empty");
  if (s.size() > 255 + 140) return Bad(s, "too long");
  Reference r;
  std::string_view rest = s;
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view dg = rest.substr(at + 1);
    if (dg.size() != 71 || dg.substr(0, 7) != "sha256:") return Bad(s, "bad digest");
    for (char c : dg.substr(7))
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return Bad(s, "bad digest");
    r.digest = std::string(dg);
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/'.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string tag(rest.substr(colon + 1));
    if (!IsTag(tag)) return Bad(s, "bad tag");
    r.tag = tag;
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Bad(s, "empty name");
  // Domain: the first component if it has '.', ':' or is "localhost" (or has upper case).
  size_t first = rest.find('/');
  std::string_view path = rest;
  if (first != std::string_view::npos) {
    std::string_view head = rest.substr(0, first);
    bool upper = false;
    for (char c : head) upper |= (c >= 'A' && c <= 'Z');
    if (head.find('.') != std::string_view::npos || head.find(':') != std::string_view::npos ||
        head == "localhost" || upper) {
      if (!IsDomain(head)) return Bad(s, "bad domain");
      r.domain = std::string(head);
      path = rest.substr(first + 1);
    }
  }
  if (r.domain.empty()) r.domain = "docker.io";
  if (r.domain == "index.docker.io") r.domain = "docker.io";
  if (path.empty()) return Bad(s, "empty path");
  size_t start = 0;
  while (true) {
    size_t end = path.find('/', start);
    std::string comp(path.substr(start, end == std::string_view::npos ? path.npos : end - start));
    if (comp.empty()) return Bad(s, "empty path component");
    if (!IsComponent(comp)) {
      for (char c : comp)
        if (c >= 'A' && c <= 'Z') return Bad(s, "repository name must be lowercase");
      return Bad(s, "bad path component \"" + comp + "\"");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  r.path = std::string(path);
  if (r.domain == "docker.io" && r.path.find('/') == std::string::npos)
    r.path = "library/" + r.path;
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

bool LooksLikeIdPrefix(std::string_view s) {
  if (s.substr(0, 7) == "sha256:") s.remove_prefix(7);
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace shale::oci
