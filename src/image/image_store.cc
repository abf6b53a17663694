#include "image/image_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "image/store_impl.h"
#include "oci/reference.h"
#include "store/store_root.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::image {

Result<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root) {
  auto s = std::make_unique<StoreImpl>();
  TRY(s->Init(root));
  return std::unique_ptr<ImageStore>(std::move(s));
}

Result<std::string> NormalizeTag(std::string_view ref) {
  oci::Reference r = TRY(oci::ParseReference(ref));
  // docker: a tag names a repository and a tag, never a digest (dropping it silently would
  // make "a:b@sha256:..." point at another image than the digest says).
  if (!r.digest.empty())
    return Error(Errc::kInvalidArgument,
                 "tag " + std::string(ref) + ": refusing to create a tag with a digest reference");
  if (r.tag.empty()) return Error(Errc::kInvalidArgument, "tag " + std::string(ref) +
                                                              ": a digest cannot be used as a tag");
  // docker's NameTotalLengthMax: the repository name as written, without the tag.
  std::string_view name = ref;
  size_t slash = name.rfind('/'), colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash))
    name = name.substr(0, colon);
  if (name.size() > 255)
    return Error(Errc::kInvalidArgument,
                 "tag " + std::string(ref.substr(0, 40)) + "...: repository name must not be "
                 "more than 255 characters (it has " + std::to_string(name.size()) + ")");
  return r.FamiliarName() + ":" + r.tag;
}

std::string RepoOfTag(const std::string& familiar) {
  size_t slash = familiar.rfind('/');
  size_t colon = familiar.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    return familiar.substr(0, colon);
  return familiar;
}

std::string MediaTypeFor(layer::Compression c) {
  switch (c) {
    case layer::Compression::kGzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case layer::Compression::kZstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
    default: return "application/vnd.oci.image.layer.v1.tar";
  }
}

// ---------------------------------------------------------------------------------------
// Txn

Result<Txn> Txn::Begin(StoreImpl& s) {
  Txn t;
  t.s_ = &s;
  TRY(MakeDirsAbs(s.tmp_dir(), 0700));
  std::string tmpl = s.tmp_dir() + "/txn-XXXXXX";
  if (!mkdtemp(tmpl.data())) return Error::FromErrno(errno, "mkdtemp " + tmpl);
  t.dir_ = tmpl;
  int fd = ::open((t.dir_ + "/journal").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Error::FromErrno(errno, "open " + t.dir_ + "/journal");
  t.journal_ = UniqueFd(fd);
  return t;
}

Txn::Txn(Txn&& o) noexcept
    : s_(o.s_),
      dir_(std::exchange(o.dir_, "")),
      journal_(std::move(o.journal_)),
      driver_layers_(std::move(o.driver_layers_)),
      layers_(std::move(o.layers_)),
      blobs_(std::move(o.blobs_)),
      images_(std::move(o.images_)),
      done_(std::exchange(o.done_, true)) {}

Txn::~Txn() {
  if (!done_) Rollback();
  if (!dir_.empty()) (void)RemoveTreeAbs(dir_);
}

Result<void> Txn::Journal(std::string_view line) {
  std::string l = std::string(line) + "\n";
  TRY(WriteAll(journal_.get(), l, dir_ + "/journal"));
  if (::fdatasync(journal_.get()) != 0) return Error::FromErrno(errno, "fsync journal");
  return Ok();
}

Result<void> Txn::NoteDriverLayer(const std::string& id) {
  TRY(Journal("driver " + id));
  driver_layers_.push_back(id);
  return Ok();
}
Result<void> Txn::NoteLayer(const Digest& c) {
  TRY(Journal("layer " + c.str()));
  layers_.push_back(c);
  return Ok();
}
Result<void> Txn::NoteBlob(const Digest& d) {
  TRY(Journal("blob " + d.str()));
  blobs_.push_back(d);
  return Ok();
}
Result<void> Txn::NoteImage(const Digest& id) {
  TRY(Journal("image " + id.str()));
  images_.push_back(id);
  return Ok();
}

void Txn::Commit() {
  done_ = true;
  // Recovery of a txn dir that outlived its process must not undo work that was committed
  // (an untagged image that was just loaded, say): say so in the journal first.
  if (journal_)
    if (auto r = Journal("committed"); !r) LogWarn("txn " + dir_ + ": " + r.error().message());
}

void Txn::Rollback() {
  done_ = true;
  if (!s_) return;
  for (auto it = images_.rbegin(); it != images_.rend(); ++it) (void)s_->imagedb().Delete(*it);
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) (void)s_->layers().Remove(*it);
  for (auto it = driver_layers_.rbegin(); it != driver_layers_.rend(); ++it) {
    (void)s_->driver().Unmount(*it);
    if (auto r = s_->driver().Remove(*it); !r)
      LogWarn("rollback: remove layer " + *it + ": " + r.error().message());
  }
  for (auto it = blobs_.rbegin(); it != blobs_.rend(); ++it) (void)s_->content().Delete(*it);
}

// ---------------------------------------------------------------------------------------
// Open, recovery, lock

Result<void> StoreImpl::Init(const std::string& root) {
  root_ = root;
  TRY(store::PrepareRoot(root_));
  content_ = TRY(store::ContentStore::Open(root_));
  layers_ = TRY(store::LayerStore::Open(root_ + "/image/overlay2/layerdb", tmp_dir()));
  imagedb_ = TRY(store::ImageDb::Open(root_ + "/image/overlay2/imagedb"));
  driver_ = TRY(graph::NewOverlay2(root_ + "/overlay2"));
  // Stale tmp/ entries are only removed when nobody else holds the lock: a live writer
  // holds it exclusively for as long as its tmp/ entries exist.
  auto names = ListDir(tmp_dir());
  auto stale = [&](const std::string& n) { return store::IsStaleStagingEntry(tmp_dir(), n); };
  if (names && std::any_of(names->begin(), names->end(), stale)) {
    auto lock = FileLock::TryAcquire(root_ + "/shale.lock", FileLock::Mode::kExclusive);
    if (lock) Recover();
  }
  return Ok();
}

void StoreImpl::Recover() {
  // A driver layer whose Create or Remove was interrupted is only a temporary dir.
  if (auto r = driver_->RemoveStaging(); !r) LogWarn(r.error().message());
  auto names = ListDir(tmp_dir());
  if (!names) return;
  // Images an unfinished txn wrote go first, so that their layers count as unused below.
  // Only untagged ones no container uses: a tag may already have been moved onto one, and
  // the tag it replaced cannot be given back.
  for (const auto& n : *names) {
    if (!StartsWith(n, "txn-")) continue;
    auto journal = ReadFile(tmp_dir() + "/" + n + "/journal");
    if (!journal) continue;
    std::vector<std::string> lines = Split(*journal, '\n');
    if (std::find(lines.begin(), lines.end(), "committed") != lines.end()) continue;
    std::set<std::string> used;
    if (auto ms = layers_.ListMounts(); ms)
      for (const auto& m : *ms) used.insert(m.image.hex());
    for (const auto& l : lines) {
      if (!StartsWith(l, "image ")) continue;
      auto id = Digest::Parse(l.substr(6));
      if (!id || !imagedb_.Has(*id) || used.count(id->hex())) continue;
      auto tags = TagsOf(*id);
      if (tags && tags->empty()) (void)imagedb_.Delete(*id);
    }
  }
  // What the store references now: journaled objects still referenced are kept.
  std::set<std::string> image_chains;
  if (auto ids = imagedb_.List(); ids)
    for (const auto& id : *ids)
      if (auto img = Get(id); img)
        for (const auto& c : img->chain_ids) image_chains.insert(c.hex());
  if (auto ms = layers_.ListMounts(); ms)
    for (const auto& m : *ms)
      for (Digest c = m.parent; !c.empty();) {
        image_chains.insert(c.hex());
        auto rec = layers_.Get(c);
        if (!rec) break;
        c = rec->parent;
      }
  for (const auto& n : *names) {
    // Only what shale made: anything else in tmp/ is left alone (and said).
    if (!store::IsStagingName(n)) {
      LogWarn("store " + root_ + ": leaving " + tmp_dir() + "/" + n +
              " alone: shale did not make it");
      continue;
    }
    if (!store::IsStaleStagingEntry(tmp_dir(), n)) continue;  // a download to resume
    std::string dir = tmp_dir() + "/" + n;
    auto journal = ReadFile(dir + "/journal");
    bool committed = false;
    if (journal) {
      auto all = Split(*journal, '\n');
      committed = std::find(all.begin(), all.end(), "committed") != all.end();
    }
    if (journal && !committed) {
      std::vector<std::string> lines = Split(*journal, '\n');
      std::reverse(lines.begin(), lines.end());
      std::set<std::string> cache_in_use, blobs_in_use;
      auto refresh = [&]() {
        cache_in_use.clear();
        blobs_in_use.clear();
        if (auto recs = layers_.List(); recs)
          for (const auto& r : *recs) {
            cache_in_use.insert(r.cache_id);
            if (!r.blob_digest.empty()) blobs_in_use.insert(r.blob_digest.hex());
          }
        if (auto ms = layers_.ListMounts(); ms)
          for (const auto& m : *ms) {
            cache_in_use.insert(m.init_id);
            cache_in_use.insert(m.mount_id);
          }
      };
      for (const auto& l : lines) {
        if (StartsWith(l, "layer ")) {
          auto c = Digest::Parse(l.substr(6));
          if (c && !image_chains.count(c->hex())) (void)layers_.Remove(*c);
        }
      }
      refresh();
      for (const auto& l : lines) {
        if (StartsWith(l, "driver ")) {
          std::string id = l.substr(7);
          if (!cache_in_use.count(id) && driver_->Exists(id)) {
            (void)driver_->Unmount(id);
            (void)driver_->Remove(id);
          }
        } else if (StartsWith(l, "blob ")) {
          auto d = Digest::Parse(l.substr(5));
          if (d && !blobs_in_use.count(d->hex())) (void)content_.Delete(*d);
        }
      }
    }
    (void)RemoveTreeAbs(dir);
  }
}

Result<FileLock> StoreImpl::Lock(FileLock::Mode mode) {
  return FileLock::Acquire(root_ + "/shale.lock", mode);
}

// ---------------------------------------------------------------------------------------
// Lookup

Result<Image> StoreImpl::Get(const Digest& id) {
  std::string bytes = TRY(imagedb_.Get(id));
  Image img;
  img.id = id;
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(Errc::kCorrupt, "image " + id.str() + ": config is not a JSON object");
  img.config = std::move(j);
  if (img.config.contains("rootfs") && img.config["rootfs"].contains("diff_ids") &&
      img.config["rootfs"]["diff_ids"].is_array())
    for (const auto& d : img.config["rootfs"]["diff_ids"]) {
      if (!d.is_string()) return Error(Errc::kCorrupt, "image " + id.str() + ": bad diff_ids");
      img.diff_ids.push_back(TRY(Digest::Parse(d.get<std::string>()).Wrap("image " + id.str())));
    }
  Digest chain;
  for (size_t i = 0; i < img.diff_ids.size(); ++i) {
    chain = i == 0 ? img.diff_ids[0] : ChainId(chain, img.diff_ids[i]);
    img.chain_ids.push_back(chain);
  }
  for (const auto& c : img.chain_ids) {
    auto rec = layers_.Get(c);
    if (!rec) return std::move(rec).error().Wrap("image " + id.Short());
    img.size += rec->size;
    img.layer_sizes.push_back(rec->size);
    img.top_layer_id = rec->cache_id;
  }
  if (img.config.contains("created") && img.config["created"].is_string()) {
    auto t = ParseRfc3339(img.config["created"].get<std::string>());
    if (t) img.created_unix = *t / 1000000000;
  }
  img.parent = imagedb_.Parent(id);
  const store::Repositories* repos = TRY(RepositoriesForReading());
  img.repo_tags = repos->RefsFor(id);
  if (auto info = ImageManifestInfo(id); info && info->contains("repoDigests") &&
                                         (*info)["repoDigests"].is_array())
    for (const auto& r : (*info)["repoDigests"])
      if (r.is_string()) img.repo_digests.push_back(r.get<std::string>());  // pull.cc / push.cc
  return img;
}

Result<std::vector<std::string>> StoreImpl::TagsOf(const Digest& id) {
  const store::Repositories* repos = TRY(RepositoriesForReading());
  return repos->RefsFor(id);
}

Result<const store::Repositories*> StoreImpl::RepositoriesForReading() {
  std::string path = repositories_path();
  RepositoriesVersion v;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    v = {st.st_dev, st.st_ino, st.st_size,
         int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  } else if (errno != ENOENT) {
    return Error::FromErrno(errno, "stat " + path);
  }
  // Replaced between the stat and the read: the next call sees another version and reads
  // it again.
  if (!repositories_ || repositories_->first != v)
    repositories_.emplace(v, TRY(store::Repositories::Load(path)));
  return &repositories_->second;
}

Result<Image> StoreImpl::Resolve(std::string_view ref) {
  std::string_view hex = ref;
  if (hex.substr(0, 7) == "sha256:") hex.remove_prefix(7);
  if (hex.size() == 64 && IsHex64(hex)) {
    Digest id = Digest::FromHex(std::string(hex));
    if (imagedb_.Has(id)) return Get(id);
  }
  if (ref.substr(0, 7) != "sha256:") {
    auto parsed = oci::ParseReference(ref);
    if (parsed && !parsed->tag.empty()) {
      const store::Repositories* repos = TRY(RepositoriesForReading());
      auto id = repos->Lookup(parsed->FamiliarName() + ":" + parsed->tag);
      if (id) return Get(*id);
    }
  }
  if (oci::LooksLikeIdPrefix(ref)) {
    std::vector<Digest> matches;
    for (const auto& id : TRY(imagedb_.List()))
      if (StartsWith(id.hex(), hex)) matches.push_back(id);
    if (matches.size() == 1) return Get(matches[0]);
    if (matches.size() > 1)
      return Error(Errc::kInvalidArgument,
                   "image ID prefix \"" + std::string(ref) + "\" is ambiguous: it matches " +
                       matches[0].str() + " and " + matches[1].str() +
                       (matches.size() > 2 ? " and others" : "") + "; give more digits");
  }
  return Error(Errc::kNotFound, "No such image: " + std::string(ref));
}

Result<std::vector<Image>> StoreImpl::List() {
  std::vector<Image> out;
  for (const auto& id : TRY(imagedb_.List())) {
    auto img = Get(id);
    if (!img) {
      LogWarn(img.error().message());
      continue;
    }
    out.push_back(std::move(*img));
  }
  std::sort(out.begin(), out.end(), [](const Image& a, const Image& b) {
    return a.created_unix != b.created_unix ? a.created_unix > b.created_unix : a.id < b.id;
  });
  return out;
}

Result<std::vector<std::string>> StoreImpl::LayerIds(const Image& img) {
  std::vector<std::string> ids;
  for (const auto& c : img.chain_ids) ids.push_back(TRY(layers_.Get(c)).cache_id);
  return ids;
}

// ---------------------------------------------------------------------------------------
// Tags

Result<void> StoreImpl::SetTags(const Digest& id, const std::vector<std::string>& tags) {
  if (tags.empty()) return Ok();
  auto repos = TRY(store::Repositories::Load(repositories_path()));
  for (const auto& t : tags) repos.Set(RepoOfTag(t), t, id);
  TRY(repos.Save(repositories_path()));
  TRY(imagedb_.SetLastTagTime(id, FormatRfc3339Nano(NowUnixNanos())));
  return Ok();
}

Result<void> StoreImpl::Tag(const Image& img, std::string_view ref) {
  std::string t = TRY(NormalizeTag(ref));
  return SetTags(img.id, {t});
}

// ---------------------------------------------------------------------------------------
// Remove (rmi)

Result<std::vector<std::string>> StoreImpl::Remove(std::string_view ref, bool force) {
  Image img = TRY(Resolve(ref));
  std::vector<std::string> out;
  auto repos = TRY(store::Repositories::Load(repositories_path()));
  std::vector<std::string> tags = repos.RefsFor(img.id);
  std::vector<store::MountRecord> users;
  for (const auto& m : TRY(layers_.ListMounts()))
    if (m.image == img.id) users.push_back(m);

  // By name: untag; by id (or a prefix of it): the image itself.
  std::optional<std::string> by_tag;
  if (auto p = oci::ParseReference(ref); p && !p->tag.empty()) {
    std::string t = p->FamiliarName() + ":" + p->tag;
    if (repos.Lookup(t) == img.id) by_tag = t;
  }
  std::string short_id = img.id.Short();
  if (by_tag) {
    if (tags.size() == 1 && !users.empty() && !force)
      return Error(Errc::kBusy, "conflict: unable to remove repository reference \"" +
                                    std::string(ref) + "\" (must force) - container " +
                                    users[0].container_id.substr(0, 12) +
                                    " is using its referenced image " + short_id);
    repos.Remove(*by_tag);
    TRY(repos.Save(repositories_path()));
    out.push_back("Untagged: " + *by_tag);
    if (tags.size() > 1 || !users.empty()) return out;
  } else {
    if (tags.size() > 1 && !force)
      return Error(Errc::kBusy, "conflict: unable to delete " + short_id +
                                    " (must be forced) - image is referenced in multiple "
                                    "repositories");
    if (!users.empty() && !force)
      return Error(Errc::kBusy, "conflict: unable to delete " + short_id +
                                    " (must be forced) - image is being used by container " +
                                    users[0].container_id.substr(0, 12));
    for (const auto& t : tags) {
      repos.Remove(t);
      out.push_back("Untagged: " + t);
    }
    if (!tags.empty()) TRY(repos.Save(repositories_path()));
    // A container still stands on these layers: keep the image, untagged (docker -f).
    if (!users.empty()) return out;
  }

  // Delete the image, then every layer no other image and no container uses.
  std::set<std::string> used;
  for (const auto& id : TRY(imagedb_.List())) {
    if (id == img.id) continue;
    auto other = Get(id);
    if (!other) continue;
    for (const auto& c : other->chain_ids) used.insert(c.hex());
  }
  for (const auto& m : TRY(layers_.ListMounts()))
    for (Digest c = m.parent; !c.empty();) {
      used.insert(c.hex());
      auto rec = layers_.Get(c);
      if (!rec) break;
      c = rec->parent;
    }
  TRY(imagedb_.Delete(img.id));
  out.push_back("Deleted: " + img.id.str());
  std::vector<store::LayerRecord> doomed;
  for (auto it = img.chain_ids.rbegin(); it != img.chain_ids.rend(); ++it) {
    if (used.count(it->hex())) break;  // parents of a used layer are used too
    auto rec = layers_.Get(*it);
    if (!rec) continue;
    doomed.push_back(*rec);
    used.insert(it->hex());  // the same chain twice in one image is removed once
  }
  for (const auto& rec : doomed) {
    (void)driver_->Unmount(rec.cache_id);
    TRY(layers_.Remove(rec.chain_id));
    TRY(driver_->Remove(rec.cache_id).Wrap("remove layer " + rec.chain_id.str()));
    out.push_back("Deleted: " + rec.chain_id.str());
  }
  // Blobs no remaining layer keeps.
  std::set<std::string> kept;
  for (const auto& r : TRY(layers_.List()))
    if (!r.blob_digest.empty()) kept.insert(r.blob_digest.hex());
  for (const auto& rec : doomed)
    if (!rec.blob_digest.empty() && !kept.count(rec.blob_digest.hex()))
      TRY(content_.Delete(rec.blob_digest));
  TRY(ForgetDistribution(img.id, doomed));  // push.cc: gzips push made, pulled manifests
  return out;
}

// ---------------------------------------------------------------------------------------
// History, mount, inspect, container refs

Result<std::vector<HistoryEntry>> StoreImpl::History(const Image& img) {
  std::vector<HistoryEntry> out;
  nlohmann::json hist = img.config.contains("history") && img.config["history"].is_array()
                            ? img.config["history"] : nlohmann::json::array();
  size_t non_empty = 0;
  for (const auto& h : hist) non_empty += h.value("empty_layer", false) ? 0 : 1;
  // Layers that have no history entry (archives may carry none) are the oldest ones.
  size_t layer = 0;
  for (; non_empty + layer < img.chain_ids.size(); ++layer) {
    HistoryEntry e;
    e.id = "<missing>";
    e.created_unix = img.created_unix;
    if (auto rec = layers_.Get(img.chain_ids[layer]); rec) e.size = rec->size;
    out.push_back(std::move(e));
  }
  for (const auto& h : hist) {
    HistoryEntry e;
    e.id = "<missing>";
    if (h.contains("created") && h["created"].is_string())
      if (auto t = ParseRfc3339(h["created"].get<std::string>()); t)
        e.created_unix = *t / 1000000000;
    e.created_by = h.value("created_by", "");
    e.comment = h.value("comment", "");
    e.empty_layer = h.value("empty_layer", false);
    if (!e.empty_layer && layer < img.chain_ids.size()) {
      auto rec = layers_.Get(img.chain_ids[layer++]);
      if (rec) e.size = rec->size;
    }
    out.push_back(std::move(e));
  }
  std::reverse(out.begin(), out.end());
  if (!out.empty()) out[0].id = img.id.str();
  return out;
}

Result<std::string> StoreImpl::MountImage(const Image& img) {
  if (img.top_layer_id.empty())
    return Error(Errc::kInvalidArgument, "image " + img.id.Short() + " has no layers to mount");
  return driver_->Mount(img.top_layer_id);
}

Result<void> StoreImpl::UnmountImage(const Image& img) {
  if (img.top_layer_id.empty()) return Ok();
  return driver_->Unmount(img.top_layer_id);
}

Result<void> StoreImpl::AddContainerRef(const std::string& ctr_id, const Image& img,
                                        const std::string& init_id,
                                        const std::string& mount_id) {
  store::MountRecord m;
  m.container_id = ctr_id;
  m.init_id = init_id;
  m.mount_id = mount_id;
  if (!img.chain_ids.empty()) m.parent = img.chain_ids.back();
  m.image = img.id;
  return layers_.PutMount(m, tmp_dir());
}

Result<void> StoreImpl::RemoveContainerRef(const std::string& ctr_id) {
  return layers_.RemoveMount(ctr_id);
}

Result<nlohmann::json> StoreImpl::InspectJson(const Image& img) {
  const auto& c = img.config;
  nlohmann::json j;
  j["Id"] = img.id.str();
  j["RepoTags"] = img.repo_tags;
  j["RepoDigests"] = img.repo_digests;
  j["Parent"] = img.parent ? img.parent->str() : c.value("parent", "");
  j["Comment"] = c.value("comment", "");
  j["Created"] = c.value("created", "");
  j["Container"] = c.value("container", "");
  j["DockerVersion"] = c.value("docker_version", "");
  j["Author"] = c.value("author", "");
  j["Config"] = c.contains("config") ? c["config"] : nlohmann::json(nullptr);
  j["Architecture"] = c.value("architecture", "");
  if (c.contains("variant")) j["Variant"] = c["variant"];
  j["Os"] = c.value("os", "");
  j["Size"] = img.size;
  j["VirtualSize"] = img.size;
  nlohmann::json gd = {{"Name", std::string(driver_->Name())}, {"Data", nlohmann::json::object()}};
  if (!img.top_layer_id.empty())
    for (const auto& [k, v] : TRY(driver_->Metadata(img.top_layer_id))) gd["Data"][k] = v;
  j["GraphDriver"] = gd;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& d : img.diff_ids) layers.push_back(d.str());
  j["RootFS"] = {{"Type", "layers"}, {"Layers", layers}};
  std::string ltt = imagedb_.LastTagTime(img.id);
  j["Metadata"] = {{"LastTagTime", ltt.empty() ? "0001-01-01T00:00:00Z" : ltt}};
  return j;
}

// ---------------------------------------------------------------------------------------
// Unpack and register

Result<Unpacked> StoreImpl::UnpackStream(Txn& txn, const std::string& parent_cache,
                                         const layer::ReadFn& read, bool keep_blob,
                                         const std::string& label, int64_t total) {
  Unpacked u;
  u.cache_id = RandomHexId();
  TRY(txn.NoteDriverLayer(u.cache_id));
  TRY(driver_->Create(u.cache_id, parent_cache, graph::LayerKind::kImage));
  Dir diff = TRY(driver_->OpenDiffDir(u.cache_id));
  UniqueFd tee;
  if (keep_blob) tee = TRY(TxnFile(txn, "blob", &u.blob_tmp));
  UniqueFd split = TRY(TxnFile(txn, "split", &u.split_tmp));
  Progress progress(label, total);
  layer::ApplyOptions opts;
  opts.tee_fd = tee ? tee.get() : -1;
  opts.tee_compressed_only = true;
  opts.tar_split_fd = split.get();
  if (Progress::Enabled()) opts.progress = [&](int64_t n) { progress.Update(n); };
  u.res = TRY(layer::Apply(diff, read, opts));
  progress.Done();
  if (u.res.compression == layer::Compression::kNone && keep_blob) {
    (void)::unlink(u.blob_tmp.c_str());
    u.blob_tmp.clear();
  }
  return u;
}

Result<UniqueFd> StoreImpl::TxnFile(Txn& txn, const char* prefix, std::string* path) {
  std::string tmpl = txn.dir() + "/" + prefix + "-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "mkstemp " + tmpl);
  *path = tmpl;
  return UniqueFd(fd);
}

Result<Unpacked> StoreImpl::UnpackFd(Txn& txn, const std::string& parent_cache, int fd,
                                     bool keep_blob, const std::string& label, int64_t total) {
  layer::ReadFn read = [fd](char* buf, size_t n) -> Result<size_t> {
    for (;;) {
      ssize_t r = ::read(fd, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return Error::FromErrno(errno, "read layer");
    }
  };
  return UnpackStream(txn, parent_cache, read, keep_blob, label, total);
}

Result<store::LayerRecord> StoreImpl::Register(Txn& txn, const Unpacked& u, const Digest& chain,
                                               const Digest& parent_chain,
                                               const std::string& media_type) {
  store::LayerRecord rec;
  rec.chain_id = chain;
  rec.diff_id = u.res.diff_id;
  rec.parent = parent_chain;
  rec.cache_id = u.cache_id;
  rec.size = u.res.content_size;
  rec.tar_size = u.res.uncompressed_size;
  rec.tar_split_src = u.split_tmp;
  bool plain = u.res.compression == layer::Compression::kNone;
  if (rec.tar_split_src.empty() && plain && !u.blob_tmp.empty()) {
    // A tar packed from a dir that is now the layer (commit): split it without extracting.
    std::string split_path;
    UniqueFd split = TRY(TxnFile(txn, "split", &split_path));
    int in = ::open(u.blob_tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Error::FromErrno(errno, "open " + u.blob_tmp);
    UniqueFd owner(in);
    auto r = layer::SplitTar(in, split.get());
    if (r && r->diff_id == u.res.diff_id) {
      rec.tar_split_src = split_path;
    } else if (!r && r.error().code() != Errc::kUnsupported) {
      return std::move(r).error().Wrap("layer " + u.res.diff_id.str());
    }
  }
  // A plain tar with a tar-split needs no blob: its bytes are the split plus diff/.
  std::string blob_tmp = plain && !rec.tar_split_src.empty() ? "" : u.blob_tmp;
  if (!blob_tmp.empty() || (!plain && content_.Has(u.res.digest))) {
    if (!content_.Has(u.res.digest)) {
      TRY(txn.NoteBlob(u.res.digest));
      TRY(content_.Adopt(blob_tmp, u.res.digest));
    }
    rec.blob_digest = u.res.digest;
    rec.blob_media_type = media_type.empty() ? MediaTypeFor(u.res.compression) : media_type;
    rec.blob_size = u.res.compressed_size;
  }
  TRY(txn.NoteLayer(chain));
  TRY(layers_.Put(rec, txn.dir()));
  return rec;
}

Result<Digest> StoreImpl::RegisterImage(Txn& txn, const std::string& config,
                                        const std::vector<std::string>& tags) {
  Digest id = Digest::Of(config);
  if (!imagedb_.Has(id)) {
    TRY(txn.NoteImage(id));
    TRY(imagedb_.Put(config));
  }
  TRY(SetTags(id, tags));
  return id;
}

}  // namespace shale::image
