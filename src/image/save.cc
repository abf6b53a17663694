// docker save: docker-archive (manifest.json, repositories, <config>.json, <layer>/layer.tar)
// and OCI image-layout archives (oci-layout, index.json, blobs/sha256/…), written with
// libarchive as a stream to a file or a pipe.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <functional>
#include <thread>

#include "image/store_impl.h"
#include "oci/image_spec.h"
#include "oci/reference.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {
namespace {

using ArchiveWriter = std::unique_ptr<struct archive, FnDeleter<archive_write_free>>;

class TarOut {
 public:
  static Result<TarOut> Open(int fd) {
    TarOut t;
    t.a_.reset(archive_write_new());
    archive_write_set_format_pax_restricted(t.a_.get());
    archive_write_set_bytes_in_last_block(t.a_.get(), 1);
    if (archive_write_open_fd(t.a_.get(), fd) != ARCHIVE_OK) return t.Err("open output");
    return t;
  }
  Result<void> Header(const std::string& name, int64_t size, int64_t mtime, bool dir = false) {
    std::unique_ptr<archive_entry, FnDeleter<archive_entry_free>> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e.get(), dir ? 0755 : 0644);
    archive_entry_set_size(e.get(), dir ? 0 : size);
    archive_entry_set_mtime(e.get(), mtime, 0);
    if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) return Err("write " + name);
    return Ok();
  }
  Result<void> Data(std::string_view d) {
    while (!d.empty()) {
      la_ssize_t n = archive_write_data(a_.get(), d.data(), d.size());
      if (n < 0) return Err("write data");
      d.remove_prefix(static_cast<size_t>(n));
    }
    return Ok();
  }
  Result<void> File(const std::string& name, std::string_view data, int64_t mtime) {
    TRY(Header(name, static_cast<int64_t>(data.size()), mtime));
    return Data(data);
  }
  Result<void> Close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return Err("close output");
    return Ok();
  }

 private:
  Error Err(const std::string& what) {
    const char* s = archive_error_string(a_.get());
    return Error(Errc::kIo, what + ": " + (s ? s : "error"));
  }
  ArchiveWriter a_;
};

// Copies `size` bytes from `in` into the current entry, returning their sha256.
Result<Digest> Pump(TarOut& out, int in, int64_t size, const std::string& what) {
  Sha256 sha;
  std::string buf(1 << 20, '\0');
  int64_t done = 0;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "read " + what);
    }
    if (n == 0) break;
    done += n;
    if (done > size) return Error(Errc::kCorrupt, what + ": longer than recorded");
    sha.Update(buf.data(), static_cast<size_t>(n));
    TRY(out.Data(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
  if (done != size) return Error(Errc::kCorrupt, what + ": shorter than recorded");
  return sha.Finish();
}

struct SaveImage {
  Image img;
  std::vector<std::string> tags;  // familiar "repo:tag"
  std::string config;
};

bool IsCompressed(const std::string& media_type) {
  return media_type.find("gzip") != std::string::npos ||
         media_type.find("zstd") != std::string::npos;
}

}  // namespace

Result<void> StoreImpl::Save(const std::vector<std::string>& refs, ArchiveFormat format,
                             int out_fd) {
  std::vector<SaveImage> images;
  for (const auto& r : refs) {
    SaveImage si;
    si.img = TRY(Resolve(r));
    auto p = oci::ParseReference(r);
    if (p && !p->tag.empty()) {
      std::string t = p->FamiliarName() + ":" + p->tag;
      auto tags = si.img.repo_tags;
      if (std::find(tags.begin(), tags.end(), t) != tags.end()) si.tags.push_back(t);
    }
    si.config = TRY(imagedb_.Get(si.img.id));
    bool merged = false;
    for (auto& other : images)
      if (other.img.id == si.img.id) {
        for (const auto& t : si.tags) other.tags.push_back(t);
        merged = true;
      }
    if (!merged) images.push_back(std::move(si));
  }
  TarOut out = TRY(TarOut::Open(out_fd));

  // A layer's tar: the kept blob (decompressed on the fly if compressed), or, for a layer
  // kept without its blob, the diff dir written as a tar into tmp/. The diffID is checked.
  // Pumps what `produce` writes into a pipe (on a thread) into the current entry.
  auto pump_from = [&](const std::function<Result<void>(int)>& produce, int64_t size,
                       const std::string& what) -> Result<Digest> {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe");
    UniqueFd rd(p[0]), wr(p[1]);
    Result<void> pres;
    std::thread t([&] {
      pres = produce(wr.get());
      wr.reset();
    });
    auto pumped = Pump(out, rd.get(), size, what);
    if (!pumped) {  // drain so the producer can finish
      char buf[65536];
      while (::read(rd.get(), buf, sizeof buf) > 0) {}
    }
    t.join();
    TRY(std::move(pres).Wrap(what));
    return pumped;
  };

  auto write_layer_tar = [&](const store::LayerRecord& rec, const std::string& entry,
                             int64_t mtime) -> Result<void> {
    std::string what = "layer " + rec.diff_id.str();
    if (rec.has_tar_split) {  // also for an empty (0-byte) layer
      // Rebuilt from the tar-split and diff/; Reassemble checks size and diffID.
      std::string sp = layers_.TarSplitPath(rec.chain_id);
      int sfd = ::open(sp.c_str(), O_RDONLY | O_CLOEXEC);
      if (sfd < 0) return Error::FromErrno(errno, "open " + sp);
      UniqueFd split(sfd);
      Dir diff = TRY(driver_->OpenDiffDir(rec.cache_id));
      TRY(out.Header(entry, rec.tar_size, mtime));
      Digest got = TRY(pump_from(
          [&](int wfd) -> Result<void> {
            TRY(layer::Reassemble(diff, split.get(), wfd));
            return Ok();
          },
          rec.tar_size, what));
      if (got != rec.diff_id)
        return Error(Errc::kCorrupt, what + ": rebuilt tar has diffID " + got.str());
      return Ok();
    }
    if (!rec.blob_digest.empty() && content_.Has(rec.blob_digest) && rec.tar_size > 0) {
      UniqueFd blob = TRY(content_.OpenBlob(rec.blob_digest));
      TRY(out.Header(entry, rec.tar_size, mtime));
      Digest got;
      if (!IsCompressed(rec.blob_media_type)) {
        got = TRY(Pump(out, blob.get(), rec.tar_size, what));
      } else {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe");
        UniqueFd rd(p[0]), wr(p[1]);
        Result<void> dres;
        std::thread t([&] {
          dres = layer::Decompress(blob.get(), wr.get());
          wr.reset();
        });
        auto pumped = Pump(out, rd.get(), rec.tar_size, what);
        if (!pumped) {  // drain so the decompressor can finish
          char buf[65536];
          while (::read(rd.get(), buf, sizeof buf) > 0) {}
        }
        t.join();
        TRY(std::move(dres).Wrap(what));
        got = TRY(std::move(pumped));
      }
      if (got != rec.diff_id)
        return Error(Errc::kCorrupt, what + ": kept blob has diffID " + got.str());
      return Ok();
    }
    ScopedTempDir tmp = TRY(ScopedTempDir::Make(tmp_dir(), "save-"));
    std::string path = tmp.path() + "/layer.tar";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Error::FromErrno(errno, "open " + path);
    UniqueFd tar(fd);
    Dir diff = TRY(driver_->OpenDiffDir(rec.cache_id));
    layer::WriteResult wr = TRY(layer::WriteDiff(diff, tar.get()));
    if (wr.diff_id != rec.diff_id)
      return Error(Errc::kCorrupt, what + ": its diff dir now packs as " + wr.diff_id.str() +
                                       " (the layer's original bytes were not kept)");
    ::lseek(tar.get(), 0, SEEK_SET);
    TRY(out.Header(entry, wr.size, mtime));
    TRY(Pump(out, tar.get(), wr.size, what));
    return Ok();
  };

  if (format == ArchiveFormat::kDockerArchive) {
    nlohmann::json manifest = nlohmann::json::array();
    nlohmann::json repositories = nlohmann::json::object();
    std::set<std::string> written;
    for (const auto& si : images) {
      int64_t mtime = si.img.created_unix;
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& c : si.img.chain_ids) {
        store::LayerRecord rec = TRY(layers_.Get(c));
        std::string dir = rec.diff_id.hex();
        std::string entry = dir + "/layer.tar";
        if (!written.count(dir)) {
          TRY(out.Header(dir, 0, mtime, true));
          TRY(out.File(dir + "/VERSION", "1.0", mtime));
          TRY(write_layer_tar(rec, entry, mtime));
          written.insert(dir);
        }
        layers.push_back(entry);
      }
      std::string cfg_name = si.img.id.hex() + ".json";
      if (!written.count(cfg_name)) {
        TRY(out.File(cfg_name, si.config, mtime));
        written.insert(cfg_name);
      }
      manifest.push_back({{"Config", cfg_name},
                          {"RepoTags", si.tags.empty() ? nlohmann::json(nullptr)
                                                       : nlohmann::json(si.tags)},
                          {"Layers", layers}});
      if (!si.img.diff_ids.empty())
        for (const auto& t : si.tags)
          repositories[RepoOfTag(t)][t.substr(RepoOfTag(t).size() + 1)] =
              si.img.diff_ids.back().hex();
    }
    TRY(out.File("manifest.json", manifest.dump(), 0));
    if (!repositories.empty()) TRY(out.File("repositories", repositories.dump(), 0));
    return out.Close();
  }

  // OCI image layout.
  TRY(out.File("oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0));
  TRY(out.Header("blobs", 0, 0, true));
  TRY(out.Header("blobs/sha256", 0, 0, true));
  std::set<std::string> written;
  oci::Index index;
  for (const auto& si : images) {
    int64_t mtime = si.img.created_unix;
    oci::Manifest man;
    man.media_type = std::string(oci::kMediaTypeOciManifest);
    man.config = {std::string(oci::kMediaTypeOciConfig), si.img.id,
                  static_cast<int64_t>(si.config.size()), {}, {}};
    for (const auto& c : si.img.chain_ids) {
      store::LayerRecord rec = TRY(layers_.Get(c));
      oci::Descriptor d;
      if (!rec.blob_digest.empty() && content_.Has(rec.blob_digest)) {
        d.media_type = oci::OciLayerMediaType(rec.blob_media_type);
        if (d.media_type.empty()) d.media_type = std::string(oci::kMediaTypeOciLayer);
        d.digest = rec.blob_digest;
        d.size = TRY(content_.Size(rec.blob_digest));
        std::string entry = "blobs/sha256/" + d.digest.hex();
        if (!written.count(entry)) {
          UniqueFd blob = TRY(content_.OpenBlob(d.digest));
          TRY(out.Header(entry, d.size, mtime));
          Digest got = TRY(Pump(out, blob.get(), d.size, "blob " + d.digest.str()));
          if (got != d.digest)
            return Error(Errc::kCorrupt, "blob " + d.digest.str() + ": content has digest " +
                                             got.str());
          written.insert(entry);
        }
      } else {
        d.media_type = std::string(oci::kMediaTypeOciLayer);
        d.digest = rec.diff_id;
        d.size = rec.tar_size;
        std::string entry = "blobs/sha256/" + d.digest.hex();
        if (!written.count(entry)) {
          TRY(write_layer_tar(rec, entry, mtime));
          written.insert(entry);
        }
      }
      man.layers.push_back(d);
    }
    std::string cfg_entry = "blobs/sha256/" + si.img.id.hex();
    if (!written.count(cfg_entry)) {
      TRY(out.File(cfg_entry, si.config, mtime));
      written.insert(cfg_entry);
    }
    std::string man_bytes = oci::ManifestToJson(man);
    Digest man_digest = Digest::Of(man_bytes);
    std::string man_entry = "blobs/sha256/" + man_digest.hex();
    if (!written.count(man_entry)) {
      TRY(out.File(man_entry, man_bytes, mtime));
      written.insert(man_entry);
    }
    oci::Descriptor md{std::string(oci::kMediaTypeOciManifest), man_digest,
                       static_cast<int64_t>(man_bytes.size()), {}, {}};
    if (si.tags.empty()) {
      index.manifests.push_back(md);
    } else {
      for (const auto& t : si.tags) {
        oci::Descriptor tagged = md;
        auto ref = TRY(oci::ParseReference(t));
        tagged.annotations[std::string(oci::kAnnotationContainerdName)] = ref.FullString();
        tagged.annotations[std::string(oci::kAnnotationRefName)] = ref.tag;
        index.manifests.push_back(tagged);
      }
    }
  }
  TRY(out.File("index.json", oci::IndexToJson(index), 0));
  return out.Close();
}

}  // namespace shale::image
