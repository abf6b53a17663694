// docker push, and the distribution metadata pull and push share.
//
// For each layer the blob pushed is, in order of preference: the blob kept from load or
// pull (so a pulled image goes back with every digest unchanged), a compressed blob an
// earlier push made (v2metadata-by-diffid), or a new gzip (zstd with --compression-format
// zstd) of the layer's tar (rebuilt from its tar-split and diff/) kept in blobs/ and
// remembered, so it is compressed only once. With a compression asked for, only blobs in it
// are candidates.
// Each blob: HEAD (skip if the registry has it), else mount from another repository of the
// same registry known to hold it, else upload. Then the config, then the manifest: the
// pulled manifest when the image came from a registry and its blobs are the ones pushed,
// else a Docker schema2 manifest as docker writes it (an OCI manifest if a layer is zstd,
// which Docker's schema has no media type for).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "image/store_impl.h"
#include "oci/image_spec.h"
#include "oci/reference.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {
namespace {

constexpr std::string_view kDockerConfigMediaType = "application/vnd.docker.container.image.v1+json";

// Docker schema2 names the layer media types its own way; zstd has no Docker name.
std::string DockerLayerMediaType(const std::string& mt) {
  std::string oci = oci::OciLayerMediaType(mt);
  if (oci == oci::kMediaTypeOciLayerGzip) return std::string(oci::kMediaTypeDockerLayerGzip);
  if (oci == oci::kMediaTypeOciLayer) return std::string(oci::kMediaTypeDockerLayer);
  return oci;
}

std::string RegistryOf(const std::string& full_repo) {
  size_t slash = full_repo.find('/');
  return slash == std::string::npos ? "" : full_repo.substr(0, slash);
}

layer::Compression CompressionOf(const std::string& media_type) {
  std::string oci = oci::OciLayerMediaType(media_type);
  if (oci == oci::kMediaTypeOciLayerGzip) return layer::Compression::kGzip;
  if (oci == oci::kMediaTypeOciLayerZstd) return layer::Compression::kZstd;
  return layer::Compression::kNone;
}

struct PushBlob {
  oci::Descriptor desc;
  std::string path;  // file holding the blob
};

}  // namespace

// ---- distribution metadata

Result<nlohmann::json> StoreImpl::LayerSources(const Digest& diff_id) {
  auto bytes = ReadFile(distribution_dir() + "/v2metadata-by-diffid/sha256/" + diff_id.hex());
  if (!bytes) {
    if (bytes.error().code() == Errc::kNotFound) return nlohmann::json::array();
    return std::move(bytes).error();
  }
  auto j = nlohmann::json::parse(*bytes, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return nlohmann::json::array();  // rewritten on next add
  return j;
}

Result<void> StoreImpl::AddLayerSource(const Digest& diff_id, const Digest& blob,
                                       const std::string& media_type, const std::string& repo) {
  nlohmann::json j = TRY(LayerSources(diff_id));
  for (const auto& e : j)
    if (e.value("Digest", "") == blob.str() && e.value("SourceRepository", "") == repo)
      return Ok();
  j.push_back({{"Digest", blob.str()}, {"MediaType", media_type}, {"SourceRepository", repo}});
  std::string dir = distribution_dir() + "/v2metadata-by-diffid/sha256";
  TRY(MakeDirsAbs(dir, 0700));
  return WriteFileAtomic(dir + "/" + diff_id.hex(), j.dump());
}

Result<nlohmann::json> StoreImpl::ImageManifestInfo(const Digest& image_id) {
  auto bytes = ReadFile(distribution_dir() + "/image-manifests/sha256/" + image_id.hex());
  if (!bytes) {
    if (bytes.error().code() == Errc::kNotFound) return nlohmann::json::object();
    return std::move(bytes).error();
  }
  auto j = nlohmann::json::parse(*bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return nlohmann::json::object();
  return j;
}

Result<void> StoreImpl::SetImageManifest(const Digest& image_id, const Digest& manifest,
                                         const std::string& media_type,
                                         const std::string& repo_digest, const Digest& index) {
  nlohmann::json j = TRY(ImageManifestInfo(image_id));
  j["manifest"] = manifest.str();
  j["mediaType"] = media_type;
  if (!index.empty()) j["index"] = index.str();
  nlohmann::json rds = j.contains("repoDigests") && j["repoDigests"].is_array()
                           ? j["repoDigests"] : nlohmann::json::array();
  // One digest per repository, the latest (docker keeps one per repository and manifest).
  std::string repo = repo_digest.substr(0, repo_digest.find('@'));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rds)
    if (r.is_string() && r.get<std::string>().substr(0, r.get<std::string>().find('@')) != repo)
      out.push_back(r);
  out.push_back(repo_digest);
  j["repoDigests"] = out;
  std::string dir = distribution_dir() + "/image-manifests/sha256";
  TRY(MakeDirsAbs(dir, 0700));
  return WriteFileAtomic(dir + "/" + image_id.hex(), j.dump());
}

Result<void> StoreImpl::ForgetDistribution(const Digest& image_id,
                                           const std::vector<store::LayerRecord>& removed) {
  nlohmann::json info = TRY(ImageManifestInfo(image_id));
  std::string info_path = distribution_dir() + "/image-manifests/sha256/" + image_id.hex();
  if (PathExists(info_path) && ::unlink(info_path.c_str()) != 0)
    return Error::FromErrno(errno, "unlink " + info_path);
  if (auto md = Digest::Parse(info.value("manifest", "")); md) TRY(content_.Delete(*md));
  // The index (manifest list) it was chosen from, unless another image came from it too
  // (the same list pulled for another --platform).
  if (auto ix = Digest::Parse(info.value("index", "")); ix) {
    bool shared = false;
    if (auto ids = imagedb_.List(); ids)
      for (const auto& other : *ids)
        if (other != image_id)
          if (auto oi = ImageManifestInfo(other); oi && oi->value("index", "") == ix->str())
            shared = true;
    if (!shared) TRY(content_.Delete(*ix));
  }
  if (removed.empty()) return Ok();
  std::set<std::string> kept_diffs, kept_blobs;
  for (const auto& r : TRY(layers_.List())) {
    kept_diffs.insert(r.diff_id.hex());
    if (!r.blob_digest.empty()) kept_blobs.insert(r.blob_digest.hex());
  }
  for (const auto& rec : removed) {
    if (kept_diffs.count(rec.diff_id.hex())) continue;
    for (const auto& s : TRY(LayerSources(rec.diff_id)))
      if (auto d = Digest::Parse(s.value("Digest", "")); d && !kept_blobs.count(d->hex()))
        TRY(content_.Delete(*d));
    std::string p = distribution_dir() + "/v2metadata-by-diffid/sha256/" + rec.diff_id.hex();
    if (PathExists(p) && ::unlink(p.c_str()) != 0) return Error::FromErrno(errno, "unlink " + p);
  }
  return Ok();
}

// ---- push

Result<PushResult> StoreImpl::Push(std::string_view ref_text, const PushOptions& opts) {
  oci::Reference ref = TRY(oci::ParseReference(ref_text));
  if (ref.tag.empty())
    return Error(Errc::kInvalidArgument, "push " + std::string(ref_text) +
                                             ": give a tag, not a digest (REPO:TAG)");
  Image img = TRY(Resolve(ref.FamiliarName() + ":" + ref.tag));
  std::string config = TRY(imagedb_.Get(img.id));
  std::string full_repo = ref.FullName();
  // The blob of each layer, made (and kept) where none is known.
  std::vector<PushBlob> blobs;
  std::vector<nlohmann::json> sources;
  for (const auto& c : img.chain_ids) {
    store::LayerRecord rec = TRY(layers_.Get(c));
    nlohmann::json srcs = TRY(LayerSources(rec.diff_id));
    PushBlob b;
    // A blob is usable if it is stored and, when a compression was asked for, in it.
    auto fits = [&](const std::string& media_type) {
      return !opts.compression || CompressionOf(media_type) == *opts.compression;
    };
    if (!rec.blob_digest.empty() && content_.Has(rec.blob_digest) &&
        fits(rec.blob_media_type)) {
      b.desc.digest = rec.blob_digest;
      b.desc.media_type = rec.blob_media_type;
    } else {
      for (const auto& s : srcs) {
        auto d = Digest::Parse(s.value("Digest", ""));
        std::string mt = s.value("MediaType", std::string(oci::kMediaTypeOciLayerGzip));
        if (d && content_.Has(*d) && fits(mt)) {
          b.desc.digest = *d;
          b.desc.media_type = mt;
          break;
        }
      }
    }
    layer::Compression want = opts.compression.value_or(layer::Compression::kGzip);
    if (b.desc.digest.empty()) {
      // Compress once: the layer's tar (from tar-split + diff/) through gzip or zstd into tmp/.
      // A content-store blob being written (tmp/blob-*, a prefix store recovery collects);
      // gzip writes through its fd and hashes the output itself, so it is Adopt()ed, not
      // Commit()ed (the writer's destructor then finds its temp name gone).
      store::BlobWriter w = TRY(content_.Writer());
      std::string out_path = w.temp_path();
      int ofd = w.fd();
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe");
      UniqueFd rd(p[0]), wr(p[1]);
      Dir diff = TRY(driver_->OpenDiffDir(rec.cache_id));
      Result<void> pres;
      std::thread producer([&] {
        pres = [&]() -> Result<void> {
          if (rec.has_tar_split) {
            std::string sp = layers_.TarSplitPath(rec.chain_id);
            int sfd = ::open(sp.c_str(), O_RDONLY | O_CLOEXEC);
            if (sfd < 0) return Error::FromErrno(errno, "open " + sp);
            UniqueFd split(sfd);
            TRY(layer::Reassemble(diff, split.get(), wr.get()));
          } else {
            TRY(layer::WriteDiff(diff, wr.get()));
          }
          return Ok();
        }();
        wr.reset();
      });
      Digest uncompressed;
      auto gz = want == layer::Compression::kZstd ? layer::ZstdCompress(rd.get(), ofd, &uncompressed)
                                                  : layer::GzipCompress(rd.get(), ofd, &uncompressed);
      if (!gz) {
        char buf[65536];
        while (::read(rd.get(), buf, sizeof buf) > 0) {}
      }
      producer.join();
      TRY(std::move(pres).Wrap("layer " + rec.diff_id.str()));
      Digest digest = TRY(std::move(gz).Wrap("compress layer " + rec.diff_id.str()));
      if (uncompressed != rec.diff_id)
        return Error(Errc::kCorrupt, "layer " + rec.diff_id.str() +
                                         ": its files now pack as " + uncompressed.str() +
                                         " (the layer's original bytes were not kept)");
      TRY(content_.Adopt(out_path, digest));
      b.desc.digest = digest;
      b.desc.media_type = std::string(want == layer::Compression::kZstd ? oci::kMediaTypeOciLayerZstd
                                                                         : oci::kMediaTypeOciLayerGzip);
      TRY(AddLayerSource(rec.diff_id, digest, b.desc.media_type, ""));
      srcs = TRY(LayerSources(rec.diff_id));
    }
    b.desc.size = TRY(content_.Size(b.desc.digest));
    b.path = content_.BlobPath(b.desc.digest);
    blobs.push_back(b);
    sources.push_back(srcs);
  }

  auto client = TRY(registry::Client::Connect(ref.domain, opts.client));
  PushResult result;
  result.tag = ref.FamiliarName() + ":" + ref.tag;
  // The config gets no progress line (docker shows layers only).
  auto upload = [&](const Digest& d, const std::string& path, int64_t size,
                    const nlohmann::json& srcs, bool show = true) -> Result<void> {
    auto progress = [&](const Digest& d, const std::string& status, int64_t done, int64_t total) {
      if (show && opts.progress) opts.progress(d.Short(), status, done, total);
    };
    auto have = TRY(client->HeadBlob(ref.path, d));
    if (have) {
      ++result.blobs_skipped;
      progress(d, "Layer already exists", size, size);
      return Ok();
    }
    for (const auto& s : srcs) {
      std::string from = s.value("SourceRepository", "");
      if (s.value("Digest", "") != d.str() || from.empty() || from == full_repo ||
          RegistryOf(from) != RegistryOf(full_repo))
        continue;
      std::string from_path = from.substr(RegistryOf(from).size() + 1);
      if (TRY(client->MountBlob(ref.path, d, from_path))) {
        ++result.blobs_skipped;
        progress(d, "Mounted from " + from_path, size, size);
        return Ok();
      }
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::FromErrno(errno, "open " + path);
    UniqueFd owner(fd);
    progress(d, "Pushing", 0, size);
    TRY(client->PutBlob(ref.path, d, fd, size, 0,
                        [&](int64_t n) { progress(d, "Pushing", n, size); }));
    ++result.blobs_uploaded;
    progress(d, "Pushed", size, size);
    return Ok();
  };
  for (size_t i = 0; i < blobs.size(); ++i) {
    TRY(upload(blobs[i].desc.digest, blobs[i].path, blobs[i].desc.size, sources[i]));
    TRY(AddLayerSource(img.diff_ids[i], blobs[i].desc.digest, blobs[i].desc.media_type,
                       full_repo));
  }
  std::string cfg_path = root_ + "/image/overlay2/imagedb/content/sha256/" + img.id.hex();
  // The config is in every repository the image was pulled from or pushed to (its
  // RepoDigests), so it can be mounted from one of those like the layers.
  nlohmann::json cfg_sources = nlohmann::json::array();
  for (const auto& rd : TRY(Get(img.id)).repo_digests)
    cfg_sources.push_back({{"Digest", img.id.str()},
                           {"SourceRepository", rd.substr(0, rd.find('@'))}});
  TRY(upload(img.id, cfg_path, static_cast<int64_t>(config.size()), cfg_sources, false));

  // The pulled manifest if it describes exactly these blobs; else Docker schema2.
  std::string man_bytes, man_type;
  nlohmann::json info = TRY(ImageManifestInfo(img.id));
  if (auto md = Digest::Parse(info.value("manifest", "")); md && content_.Has(*md)) {
    std::string bytes = TRY(content_.ReadBlob(*md));
    auto kept = oci::ParseManifest(bytes, "manifest " + md->str());
    bool same = kept && kept->config.digest == img.id && kept->layers.size() == blobs.size();
    for (size_t i = 0; same && i < blobs.size(); ++i)
      same = kept->layers[i].digest == blobs[i].desc.digest;
    if (same) {
      man_bytes = bytes;
      man_type = info.value("mediaType", std::string(oci::kMediaTypeDockerManifest));
    }
  }
  if (man_bytes.empty()) {
    bool docker = true;
    for (const auto& b : blobs) docker &= DockerLayerMediaType(b.desc.media_type).find("docker") != std::string::npos;
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& b : blobs)
      layers.push_back({{"mediaType", docker ? DockerLayerMediaType(b.desc.media_type)
                                             : oci::OciLayerMediaType(b.desc.media_type)},
                        {"size", b.desc.size},
                        {"digest", b.desc.digest.str()}});
    man_type = docker ? std::string(oci::kMediaTypeDockerManifest)
                      : std::string(oci::kMediaTypeOciManifest);
    nlohmann::json j = {{"schemaVersion", 2},
                        {"mediaType", man_type},
                        {"config", {{"mediaType", docker ? std::string(kDockerConfigMediaType)
                                                         : std::string(oci::kMediaTypeOciConfig)},
                                    {"size", config.size()},
                                    {"digest", img.id.str()}}},
                        {"layers", layers}};
    man_bytes = j.dump(3);  // docker indents its manifests by three spaces
  }
  result.manifest_digest = TRY(client->PutManifest(ref.path, ref.tag, man_type, man_bytes));
  result.manifest_size = static_cast<int64_t>(man_bytes.size());
  if (!content_.Has(result.manifest_digest)) TRY(content_.Put(man_bytes));
  std::string repo_digest = (ref.domain == "docker.io" ? ref.FamiliarName() : full_repo) + "@" +
                            result.manifest_digest.str();
  TRY(SetImageManifest(img.id, result.manifest_digest, man_type, repo_digest));
  result.stats = client->stats();
  return result;
}

}  // namespace shale::image
