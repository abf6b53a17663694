// docker pull: reference -> manifest (index -> platform) -> config -> layers.
//
// Each missing layer is downloaded into tmp/ingest-<digest hex> (kept if the pull fails, so
// a later pull resumes with Range), several at once, while UnpackStream follows the file of
// the next layer in order and hashes, inflates and extracts it in one pass into a new
// driver layer of the transaction. The registry client checks the blob's digest as it streams and Apply
// checks the compressed digest and the diffID; only then is the layer registered (the
// ingest file becomes the kept blob). Image, tag and manifest are written last, and the
// transaction journal undoes everything if the process dies before Txn::Commit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "image/ingest.h"
#include "image/store_impl.h"
#include "oci/image_spec.h"
#include "oci/reference.h"
#include "registry/resolve.h"
#include "util/log.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {
namespace {

constexpr int64_t kMaxConfigSize = 16 << 20;

std::string ShortOf(const Digest& d) { return d.Short(); }

}  // namespace

Result<PullResult> StoreImpl::Pull(std::string_view ref_text, const PullOptions& opts) {
  std::vector<std::string> resumed;
  auto r = PullOnce(ref_text, opts, &resumed);
  // Bytes a killed pull left can be bad (a crash before the page cache reached the disk):
  // then the layer does not verify, and the pull starts over with those files emptied.
  if (!r && r.error().code() == Errc::kCorrupt && !resumed.empty()) {
    LogWarn(r.error().message() + " (resumed from what an interrupted pull left); "
            "downloading it afresh");
    for (const auto& p : resumed) (void)::unlink(p.c_str());
    return PullOnce(ref_text, opts, nullptr);
  }
  return r;
}

Result<PullResult> StoreImpl::PullOnce(std::string_view ref_text, const PullOptions& opts,
                                       std::vector<std::string>* resumed) {
  oci::Reference ref = TRY(oci::ParseReference(ref_text));
  oci::Platform want = opts.platform.empty() ? registry::HostPlatform()
                                             : TRY(registry::ParsePlatform(opts.platform));
  std::mutex progress_mu;  // download threads report too
  auto progress = [&](const Digest& d, const std::string& status, int64_t done, int64_t total) {
    std::lock_guard<std::mutex> l(progress_mu);
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

  // Which layers the store lacks: each is downloaded into its ingest file by one of a few
  // download threads (docker's max-concurrent-downloads), and extracted here, in order (a
  // layer is created over its parent), following its file as it grows (image/ingest.h).
  std::vector<Digest> chains(man.layers.size()), parents(man.layers.size());
  std::vector<std::unique_ptr<IngestFile>> files(man.layers.size());
  std::vector<size_t> missing;
  for (size_t k = 0; k < man.layers.size(); ++k) {
    parents[k] = k == 0 ? Digest() : chains[k - 1];
    chains[k] = k == 0 ? diff_ids[0] : ChainId(chains[k - 1], diff_ids[k]);
    if (layers_.Get(chains[k])) {
      ++result.layers_present;
      progress(man.layers[k].digest, "Already exists", 0, 0);
      continue;
    }
    const oci::Descriptor& l = man.layers[k];
    files[k] = TRY(IngestFile::Open(tmp_dir() + "/ingest-" + l.digest.hex(), l.size));
    if (files[k]->resumed_from() > 0) {
      ++result.layers_resumed;
      if (resumed) resumed->push_back(files[k]->path());
    }
    missing.push_back(k);
    progress(l.digest, "Pulling fs layer", 0, l.size);
  }

  std::vector<std::unique_ptr<registry::Client>> clients;
  size_t workers = std::min<size_t>(missing.size(), static_cast<size_t>(std::max(1, opts.max_downloads)));
  for (size_t w = 0; w < workers; ++w) clients.push_back(TRY(client->Clone()));
  std::atomic<size_t> next{0};
  auto download = [&](registry::Client& c, size_t k) -> Result<void> {
    const oci::Descriptor& l = man.layers[k];
    IngestFile& f = *files[k];
    // Bytes an earlier pull left are hashed here and re-read by the extractor.
    Sha256 prefix;
    int64_t have = f.resumed_from();
    std::string buf(1 << 20, '\0');
    for (int64_t off = 0; off < have;) {
      ssize_t n = ::pread(f.fd(), buf.data(),
                          static_cast<size_t>(std::min<int64_t>(buf.size(), have - off)), off);
      if (n <= 0) return Error::FromErrno(n < 0 ? errno : EIO, "read " + f.path());
      prefix.Update(buf.data(), static_cast<size_t>(n));
      off += n;
    }
    if (have == l.size) {
      // All there (a pull killed after its download): no request, only the check. A
      // ranged GET past the end would be answered 416, which curl takes for a cut transfer.
      if (Digest got = prefix.Finish(); got != l.digest)
        return Error(Errc::kCorrupt, "blob " + l.digest.str() + ": content has digest " +
                                         got.str() + "; refusing it");
      progress(l.digest, "Download complete", l.size, l.size);
      return Ok();
    }
    registry::Sink sink = [&](std::string_view d) { return f.Append(d); };
    auto on_progress = [&](int64_t done) { progress(l.digest, "Downloading", done, l.size); };
    TRY(c.GetBlob(repo, l.digest, l.size, sink, on_progress, have, &prefix));
    progress(l.digest, "Download complete", l.size, l.size);
    return Ok();
  };
  // The download threads, each with its own connection (declared after all they use, so
  // that they are cancelled and joined before any of it goes, on every way out).
  struct Downloads {
    std::vector<std::unique_ptr<IngestFile>>* files;
    std::vector<std::thread> threads;
    ~Downloads() {
      for (auto& f : *files)
        if (f) f->Cancel();
      for (auto& t : threads) t.join();
    }
  } downloads{&files, {}};
  for (size_t w = 0; w < workers; ++w)
    downloads.threads.emplace_back([&, c = clients[w].get()] {
      for (size_t i; (i = next.fetch_add(1)) < missing.size();) {
        IngestFile& f = *files[missing[i]];
        f.Finish(f.cancelled() ? Error(Errc::kCancelled, "pull cancelled") : download(*c, missing[i]));
      }
    });

  Txn txn = TRY(Txn::Begin(*this));
  std::string parent_cache;
  for (size_t k = 0; k < man.layers.size(); ++k) {
    const oci::Descriptor& l = man.layers[k];
    if (!files[k]) {
      parent_cache = TRY(layers_.Get(chains[k])).cache_id;
      continue;
    }
    IngestFile& f = *files[k];
    int64_t offset = 0;
    layer::ReadFn read = [&](char* b, size_t n) -> Result<size_t> {
      size_t got = TRY(f.ReadAt(offset, b, n));
      offset += static_cast<int64_t>(got);
      return got;
    };
    auto unpacked = UnpackStream(txn, parent_cache, read, false, "", l.size);
    // Even when the extractor gave up, the download runs to its end: for bytes that are not
    // the blob, its digest check ("content has digest …") says more than the extractor's
    // "not a tar" would. Its error comes first.
    if (auto dres = f.Wait(); !dres && dres.error().code() != Errc::kCancelled) {
      if (dres.error().code() == Errc::kCorrupt) (void)::unlink(f.path().c_str());
      return std::move(dres).error().Wrap("pull " + ref.FamiliarString());
    }
    Unpacked u = TRY(std::move(unpacked).Wrap("layer " + l.digest.str()));
    if (u.res.digest != l.digest) {
      (void)::unlink(f.path().c_str());
      return Error(Errc::kCorrupt, "layer " + l.digest.str() + ": content has digest " +
                                       u.res.digest.str() + "; refusing it");
    }
    if (u.res.diff_id != diff_ids[k])
      return Error(Errc::kCorrupt, "layer " + l.digest.str() + ": uncompressed it has diffID " +
                                       u.res.diff_id.str() + ", the config says " +
                                       diff_ids[k].str());
    progress(l.digest, "Extracting", l.size, l.size);
    if (::fdatasync(f.fd()) != 0) return Error::FromErrno(errno, "fsync " + f.path());
    u.blob_tmp = f.path();
    TRY(Register(txn, u, chains[k], parents[k], l.media_type));
    if (PathExists(f.path())) (void)::unlink(f.path().c_str());  // a plain tar kept as tar-split
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
  TRY(SetImageManifest(result.image_id, m.digest, m.media_type, result.repo_digest,
                       top.digest != m.digest ? top.digest : Digest()));
  txn.Commit();
  result.up_to_date = have_image && result.layers_fetched == 0 && (tags.empty() || tag_was_there);
  result.stats = client->stats();
  for (const auto& c : clients) result.stats += c->stats();
  return result;
}

}  // namespace shale::image
