#include "store/image_db.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/strings.h"

namespace shale::store {

Result<ImageDb> ImageDb::Open(const std::string& root) {
  ImageDb db;
  db.root_ = root;
  TRY(MakeDirsAbs(root + "/content/sha256", 0700));
  TRY(MakeDirsAbs(root + "/metadata/sha256", 0700));
  return db;
}

Result<Digest> ImageDb::Put(std::string_view config, bool* created) {
  Digest id = Digest::Of(config);
  std::string path = root_ + "/content/sha256/" + id.hex();
  if (PathExists(path)) {
    if (created) *created = false;
    return id;
  }
  TRY(WriteFileAtomic(path, config, 0600));
  if (created) *created = true;
  return id;
}

bool ImageDb::Has(const Digest& id) const {
  return PathExists(root_ + "/content/sha256/" + id.hex());
}

Result<std::string> ImageDb::Get(const Digest& id) const {
  std::string path = root_ + "/content/sha256/" + id.hex();
  if (!PathExists(path)) return Error(Errc::kNotFound, "image " + id.str() + ": not found");
  std::string data = TRY(ReadFile(path));
  if (Digest::Of(data) != id)
    return Error(Errc::kCorrupt, "image config " + path + ": content does not match its id");
  return data;
}

Result<std::vector<Digest>> ImageDb::List() const {
  std::vector<Digest> out;
  for (const auto& n : TRY(ListDir(root_ + "/content/sha256")))
    if (IsHex64(n)) out.push_back(Digest::FromHex(n));
  return out;
}

Result<void> ImageDb::Delete(const Digest& id) {
  TRY(RemoveTreeAbs(root_ + "/metadata/sha256/" + id.hex()));
  std::string path = root_ + "/content/sha256/" + id.hex();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Error::FromErrno(errno, "unlink " + path);
  return Ok();
}

Result<void> ImageDb::SetLastTagTime(const Digest& id, const std::string& t) {
  std::string dir = root_ + "/metadata/sha256/" + id.hex();
  TRY(MakeDirsAbs(dir, 0700));
  return WriteFileAtomic(dir + "/lastUpdated", t, 0600);
}

Result<void> ImageDb::SetParent(const Digest& id, const Digest& parent) {
  std::string dir = root_ + "/metadata/sha256/" + id.hex();
  TRY(MakeDirsAbs(dir, 0700));
  return WriteFileAtomic(dir + "/parent", parent.str(), 0600);
}

std::optional<Digest> ImageDb::Parent(const Digest& id) const {
  auto s = ReadFile(root_ + "/metadata/sha256/" + id.hex() + "/parent");
  if (!s) return std::nullopt;
  auto d = Digest::Parse(std::string(Trim(*s)));
  if (!d) return std::nullopt;
  return *d;
}

std::string ImageDb::LastTagTime(const Digest& id) const {
  auto s = ReadFile(root_ + "/metadata/sha256/" + id.hex() + "/lastUpdated");
  return s ? std::string(Trim(*s)) : "";
}

Result<Repositories> Repositories::Load(const std::string& path) {
  Repositories r;
  if (!PathExists(path)) return r;
  std::string data = TRY(ReadFile(path));
  try {
    auto j = nlohmann::json::parse(data);
    if (j.contains("Repositories") && j["Repositories"].is_object())
      for (auto& [repo, refs] : j["Repositories"].items())
        for (auto& [ref, id] : refs.items()) r.repos_[repo][ref] = id.get<std::string>();
  } catch (const std::exception& e) {
    return Error(Errc::kCorrupt, path + ": " + e.what());
  }
  return r;
}

std::string Repositories::ToJson() const {
  nlohmann::json j = {{"Repositories", nlohmann::json::object()}};
  for (const auto& [repo, refs] : repos_) j["Repositories"][repo] = refs;
  return j.dump();
}

Result<void> Repositories::Save(const std::string& path) const {
  return WriteFileAtomic(path, ToJson(), 0600);
}

void Repositories::Set(const std::string& repo, const std::string& ref, const Digest& id) {
  repos_[repo][ref] = id.str();
}

std::optional<Digest> Repositories::Remove(const std::string& ref) {
  for (auto it = repos_.begin(); it != repos_.end(); ++it) {
    auto f = it->second.find(ref);
    if (f == it->second.end()) continue;
    auto d = Digest::Parse(f->second);
    it->second.erase(f);
    if (it->second.empty()) repos_.erase(it);
    if (!d) return std::nullopt;
    return *d;
  }
  return std::nullopt;
}

std::optional<Digest> Repositories::Lookup(const std::string& ref) const {
  for (const auto& [repo, refs] : repos_) {
    auto f = refs.find(ref);
    if (f == refs.end()) continue;
    auto d = Digest::Parse(f->second);
    if (d) return *d;
  }
  return std::nullopt;
}

std::vector<std::string> Repositories::RefsFor(const Digest& id) const {
  std::vector<std::string> out;
  std::string s = id.str();
  for (const auto& [repo, refs] : repos_)
    for (const auto& [ref, v] : refs)
      if (v == s) out.push_back(ref);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace shale::store
