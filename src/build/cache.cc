#include "build/cache.h"

#include <unistd.h>

#include <cerrno>

#include "util/digest.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::build {

std::string CacheKey(const CacheKeyParts& p) {
  Sha256 h;
  auto part = [&](std::string_view s) {
    h.Update(std::to_string(s.size()) + ":");
    h.Update(s);
  };
  part(p.parent_id);
  part(p.created_by);
  part(p.config.dump());
  part(std::to_string(p.run_env.size()));
  for (const auto& e : p.run_env) part(e);
  part(p.sources);
  return h.Finish().hex();
}

std::optional<std::string> BuildCache::Get(const std::string& key) const {
  auto s = ReadFile(dir_ + "/" + key);
  if (!s) return std::nullopt;
  std::string id(Trim(*s));
  if (!StartsWith(id, "sha256:") || !IsHex64(std::string_view(id).substr(7))) return std::nullopt;
  return id;
}

Result<void> BuildCache::Put(const std::string& key, const std::string& image_id) {
  TRY(MakeDirsAbs(dir_, 0700));
  return WriteFileAtomic(dir_ + "/" + key, image_id + "\n", 0600);
}

Result<void> BuildCache::DropIf(const std::function<bool(const std::string&)>& gone) {
  auto names = ListDir(dir_);
  if (!names) {
    if (names.error().code() == Errc::kNotFound) return Ok();
    return std::move(names).error();
  }
  for (const auto& n : *names) {
    if (!IsHex64(n)) continue;  // only the entries Put made (named by their key)
    auto id = Get(n);
    if (id && !gone(*id)) continue;
    std::string p = dir_ + "/" + n;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return Error::FromErrno(errno, "unlink " + p);
  }
  return Ok();
}

}  // namespace shale::build
