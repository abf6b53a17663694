// docker pull: reference -> manifest (index -> platform) -> config -> layers.
//
// Each missing layer is downloaded into tmp/ingest-<digest hex> (kept if the pull fails, so
// a retry resumes with Range) while the same bytes go through a pipe into UnpackStream,
// which hashes, inflates and extracts them in one pass into a new driver layer of the
// transaction. The registry client checks the blob's digest as it streams and Apply
// checks the compressed digest and the diffID; only then is the layer registered (the
// ingest file becomes the kept blob). Image, tag and manifest are written last, and the
// transaction journal undoes everything if the process dies before Txn::Commit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "image/store_impl.h"
#include "oci/image_spec.h"
#include "oci/reference.h"
#include "registry/resolve.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {
namespace {

constexpr int64_t kMaxConfigSize = 16 << 20;

std::string ShortOf(const Digest& d) { return d.Short(); }

}  // namespace

Result<PullResult> StoreImpl::Pull(std::string_view ref_text, const PullOptions& opts) {
  oci::Reference ref = TRY(oci::ParseReference(ref_text));
  oci::Platform want = opts.platform.empty() ? registry::HostPlatform()
                                             : TRY(registry::ParsePlatform(opts.platform));
  auto progress = [&](const Digest& d, const std::string& status, int64_t done, int64_t total) {
    if (opts.progress) opts.progress(ShortOf(d), status, done, total);
  };
  auto client = TRY(registry::Client::Connect(ref.domain, opts.client));
  std::string repo = ref.path;
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;

  registry::FetchedManifest top = TRY(client->GetManifest(repo, reference));
  registry::FetchedManifest m = top;
  if (oci::IsIndexMediaType(m.media_type)) {
    oci::Index idx = TRY(oci::ParseIndex(m.bytes, "index " + m.digest.str()));
    auto pick = registry::SelectManifest(idx, want);
    if (!pick) {
      std::vector<std::string> have;
      for (const auto& d : idx.manifests) have.push_back(registry::PlatformString(d.platform));
      return Error(Errc::kNotFound, "no image for " + registry::PlatformString(want) + " in " +
                                        ref.FamiliarString() + " (it has " + Join(have, ", ") +
                                        "); choose one with --platform");
    }
    m = TRY(client->GetManifest(repo, pick->digest.str()));
    if (oci::IsIndexMediaType(m.media_type))
      return Error(Errc::kUnsupported, "manifest " + m.digest.str() + " of " +
                                           ref.FamiliarString() + ": nested indexes are not supported");
  }
  oci::Manifest man = TRY(oci::ParseManifest(m.bytes, "manifest " + m.digest.str()));
  for (const auto& l : man.layers)
    if (oci::OciLayerMediaType(l.media_type).empty())
      return Error(Errc::kUnsupported, "manifest " + m.digest.str() + ": layer " + l.digest.str() +
                                           " has unsupported media type \"" + l.media_type + "\"");

  PullResult result;
  result.repo_digest = ref.FullName() + "@" + top.digest.str();
  if (ref.domain == "docker.io") result.repo_digest = ref.FamiliarName() + "@" + top.digest.str();
  if (!ref.tag.empty()) result.tag = ref.FamiliarName() + ":" + ref.tag;

  // The config: from the store if the image is known (no blob transfer at all).
  std::string config;
  bool have_image = imagedb_.Has(man.config.digest);
  if (have_image) {
    config = TRY(imagedb_.Get(man.config.digest));
  } else {
    if (man.config.size > kMaxConfigSize)
      return Error(Errc::kInvalidArgument, "config " + man.config.digest.str() + " is larger than " +
                                               std::to_string(kMaxConfigSize >> 20) + " MiB");
    config = TRY(client->GetBlobBytes(repo, man.config.digest, kMaxConfigSize));
  }
  auto cfg = TRY(oci::ParseJson(config, "config " + man.config.digest.str()));
  std::vector<Digest> diff_ids;
  try {
    for (const auto& d : cfg.at("rootfs").at("diff_ids"))
      diff_ids.push_back(TRY(Digest::Parse(d.get<std::string>()).Wrap("config")));
  } catch (const std::exception& e) {
    return Error(Errc::kInvalidArgument,
                 "config " + man.config.digest.str() + " has no rootfs.diff_ids: " + e.what());
  }
  if (diff_ids.size() != man.layers.size())
    return Error(Errc::kCorrupt, "manifest " + m.digest.str() + " lists " +
                                     std::to_string(man.layers.size()) + " layers but its config " +
                                     std::to_string(diff_ids.size()) + " diff_ids");

  Txn txn = TRY(Txn::Begin(*this));
  Digest chain, parent;
  std::string parent_cache;
  for (size_t k = 0; k < man.layers.size(); ++k) {
    const oci::Descriptor& l = man.layers[k];
    parent = chain;
    chain = k == 0 ? diff_ids[0] : ChainId(chain, diff_ids[k]);
    if (auto rec = layers_.Get(chain); rec) {
      parent_cache = rec->cache_id;
      ++result.layers_present;
      progress(l.digest, "Already exists", 0, 0);
      continue;
    }
    progress(l.digest, "Pulling fs layer", 0, l.size);
    // The ingest file: resume from what an earlier attempt left.
    std::string ingest = tmp_dir() + "/ingest-" + l.digest.hex();
    int ifd = ::open(ingest.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ifd < 0) return Error::FromErrno(errno, "open " + ingest);
    UniqueFd in_file(ifd);
    struct stat st;
    if (::fstat(ifd, &st) != 0) return Error::FromErrno(errno, "fstat " + ingest);
    int64_t have = st.st_size;
    if (have > l.size) {
      if (::ftruncate(ifd, 0) != 0) return Error::FromErrno(errno, "truncate " + ingest);
      have = 0;
    }
    if (::lseek(ifd, have, SEEK_SET) < 0) return Error::FromErrno(errno, "lseek " + ingest);

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::FromErrno(errno, "pipe");
    UniqueFd rd(p[0]), wr(p[1]);
    Result<void> dres;
    std::thread downloader([&] {
      dres = [&]() -> Result<void> {
        Sha256 prefix;
        // Bytes kept from an earlier attempt go to the extractor first.
        std::string buf(1 << 20, '\0');
        for (int64_t off = 0; off < have;) {
          ssize_t n = ::pread(ifd, buf.data(),
                              static_cast<size_t>(std::min<int64_t>(buf.size(), have - off)), off);
          if (n <= 0) return Error::FromErrno(n < 0 ? errno : EIO, "read " + ingest);
          prefix.Update(buf.data(), static_cast<size_t>(n));
          TRY(WriteAll(wr.get(), std::string_view(buf.data(), static_cast<size_t>(n)), "pipe"));
          off += n;
        }
        registry::Sink sink = [&](std::string_view d) -> Result<void> {
          TRY(WriteAll(ifd, d, ingest));
          return WriteAll(wr.get(), d, "pipe to the extractor");
        };
        auto on_progress = [&](int64_t done) { progress(l.digest, "Downloading", done, l.size); };
        return client->GetBlob(repo, l.digest, l.size, sink, on_progress, have, &prefix);
      }();
      wr.reset();  // end of stream for the extractor
    });
    layer::ReadFn read = [fd = rd.get()](char* b, size_t n) -> Result<size_t> {
      for (;;) {
        ssize_t r = ::read(fd, b, n);
        if (r >= 0) return static_cast<size_t>(r);
        if (errno != EINTR) return Error::FromErrno(errno, "read layer stream");
      }
    };
    auto unpacked = UnpackStream(txn, parent_cache, read, false, "", l.size);
    if (!unpacked) {  // drain so the downloader can finish
      char b[65536];
      while (::read(rd.get(), b, sizeof b) > 0) {}
    }
    downloader.join();
    if (!dres) {
      if (dres.error().code() == Errc::kCorrupt) (void)::unlink(ingest.c_str());
      return std::move(dres).error().Wrap("pull " + ref.FamiliarString());
    }
    Unpacked u = TRY(std::move(unpacked).Wrap("layer " + l.digest.str()));
    if (u.res.digest != l.digest) {
      (void)::unlink(ingest.c_str());
      return Error(Errc::kCorrupt, "layer " + l.digest.str() + ": content has digest " +
                                       u.res.digest.str() + "; refusing it");
    }
    if (u.res.diff_id != diff_ids[k])
      return Error(Errc::kCorrupt, "layer " + l.digest.str() + ": uncompressed it has diffID " +
                                       u.res.diff_id.str() + ", the config says " +
                                       diff_ids[k].str());
    progress(l.digest, "Extracting", l.size, l.size);
    if (::fdatasync(ifd) != 0) return Error::FromErrno(errno, "fsync " + ingest);
    in_file.reset();
    u.blob_tmp = ingest;
    TRY(Register(txn, u, chain, parent, l.media_type));
    if (PathExists(ingest)) (void)::unlink(ingest.c_str());  // a plain tar kept as tar-split
    TRY(AddLayerSource(diff_ids[k], l.digest, l.media_type, ref.FullName()));
    parent_cache = u.cache_id;
    ++result.layers_fetched;
    progress(l.digest, "Pull complete", l.size, l.size);
  }

  // The manifest(s) as pulled, so that push re-sends the same bytes (same digest).
  bool created = false;
  if (!content_.Has(m.digest)) {
    TRY(txn.NoteBlob(m.digest));
    TRY(content_.Put(m.bytes, &created));
  }
  if (top.digest != m.digest && !content_.Has(top.digest)) {
    TRY(txn.NoteBlob(top.digest));
    TRY(content_.Put(top.bytes, &created));
  }
  std::vector<std::string> tags;
  if (!result.tag.empty()) tags.push_back(result.tag);
  bool tag_was_there = false;
  if (!result.tag.empty()) {
    auto repos = TRY(store::Repositories::Load(repositories_path()));
    tag_was_there = repos.Lookup(result.tag) == man.config.digest;
  }
  result.image_id = TRY(RegisterImage(txn, config, tags));
  TRY(SetImageManifest(result.image_id, m.digest, m.media_type, result.repo_digest));
  txn.Commit();
  result.up_to_date = have_image && result.layers_fetched == 0 && (tags.empty() || tag_was_there);
  result.stats = client->stats();
  return result;
}

}  // namespace shale::image
