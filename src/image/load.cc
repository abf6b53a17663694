// docker load: docker-archive (docker save, podman save) and OCI image-layout archives.
//
// The outer archive is read with libarchive as a stream and never extracted as a whole.
// Metadata is kept in memory, within a fixed budget whatever the archive holds: the top-level
// manifest.json, index.json and oci-layout, and small entries (configs, manifests, small
// layers) while they fit in kMemoryBudget. Past it, small entries are handled like large
// ones (below); one that turns out to be a config or manifest is then read when needed
// (from its spooled copy, or by one more pass over a file), at most kMaxJsonEntry each and
// kMaxMetadata in all.
// Layer entries are handled by where the input allows:
//  * a regular file: pass 1 reads headers and small entries and seeks over the layer data;
//    pass 2 streams each needed layer entry straight into extraction (tee'd into the kept
//    blob). The layer bytes are read from disk once and written once (diff/ + blob), which
//    is the least IO possible for a 120 MB single-layer archive whose manifest.json comes
//    last, as docker save writes it.
//  * a pipe: large entries are spooled into the transaction's dir (that file then *is* the
//    kept blob), and applied from there once the manifest is known.
// All driver layers are created first (parents before children), so entries can be applied
// in whatever order the archive holds them.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include "image/store_impl.h"
#include "oci/image_spec.h"
#include "oci/reference.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strings.h"

namespace shale::image {
namespace {

using ArchiveReader = std::unique_ptr<struct archive, FnDeleter<archive_read_free>>;

constexpr int64_t kSmallEntry = 1 << 20;      // kept in memory while the budget lasts
constexpr int64_t kMaxJsonEntry = 64 << 20;   // manifest.json & co.
// All small entries held in memory at once during pass 1 (a 2 MB .tar.gz can hold 2000
// entries of 1 MiB of zeros: they must not all stay in memory).
constexpr int64_t kMemoryBudget = 32 << 20;
// Configs and manifests the archive's images need, in all.
constexpr int64_t kMaxMetadata = 256 << 20;
// Regular-file entries of one archive (each costs a name in memory).
constexpr size_t kMaxEntries = 1 << 20;

bool TopLevelMetadata(const std::string& n) {
  return n == "manifest.json" || n == "index.json" || n == "oci-layout" || n == "repositories";
}

std::string CleanName(std::string_view n) {
  while (n.size() >= 2 && n.substr(0, 2) == "./") n.remove_prefix(2);
  while (!n.empty() && n.front() == '/') n.remove_prefix(1);
  while (!n.empty() && n.back() == '/') n.remove_suffix(1);
  return std::string(n);
}

// "a/b/../c" -> "a/c" for link targets inside the archive; "" if it climbs out.
std::string ResolveRel(const std::string& dir, const std::string& target) {
  std::vector<std::string> parts;
  std::string full = target.empty() || target[0] != '/' ? dir + "/" + target : target;
  for (const auto& p : Split(full, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (parts.empty()) return "";
      parts.pop_back();
    } else {
      parts.push_back(p);
    }
  }
  return Join(parts, "/");
}

Result<ArchiveReader> OpenReader(int fd, const std::string& name) {
  ArchiveReader a(archive_read_new());
  if (!a) return Error(Errc::kInternal, "archive_read_new failed");
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_all(a.get());
  if (archive_read_open_fd(a.get(), fd, 1 << 20) != ARCHIVE_OK)
    return Error(Errc::kInvalidArgument, name + ": " + archive_error_string(a.get()));
  return a;
}

Error ArchiveError(archive* a, const std::string& what) {
  const char* s = archive_error_string(a);
  return Error(Errc::kInvalidArgument, what + ": " + (s ? s : "read error"));
}

Result<std::string> ReadEntry(archive* a, const std::string& what) {
  std::string out;
  char buf[65536];
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf, sizeof buf);
    if (n < 0) return ArchiveError(a, what);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct Entry {
  int64_t size = 0;
  int64_t ordinal = 0;  // its place among the archive's headers (duplicate names)
  bool in_memory = false;
  std::string data;
  std::string spool;  // path of a spooled copy (pipe input)
};

struct LayerSrc {
  std::string entry;
  std::optional<Digest> digest;  // OCI descriptor digest
  int64_t size = -1;
  std::string media_type;
};

struct ImagePlan {
  std::string config;
  std::vector<std::string> tags;
  std::vector<LayerSrc> layers;
};

struct Planned {
  Digest chain, parent_chain, diff_id;
  std::string cache_id;
  LayerSrc src;
  bool filled = false;
  Unpacked u;
};

std::string AnnotatedName(const std::map<std::string, std::string>& ann) {
  auto it = ann.find(std::string(oci::kAnnotationContainerdName));
  if (it != ann.end()) return it->second;
  it = ann.find(std::string(oci::kAnnotationRefName));
  // A bare tag ("latest") names no repository: such images load untagged, as docker does.
  if (it != ann.end() && (it->second.find('/') != std::string::npos ||
                          it->second.find(':') != std::string::npos))
    return it->second;
  return "";
}

}  // namespace

Result<LoadResult> StoreImpl::Load(int fd, const std::string& name) {
  Txn txn = TRY(Txn::Begin(*this));
  struct stat st;
  bool seekable = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  off_t start = seekable ? ::lseek(fd, 0, SEEK_CUR) : -1;
  if (start < 0) seekable = false;

  // ---- pass 1: headers, small entries; large ones skipped (file) or spooled (pipe).
  std::map<std::string, Entry> entries;
  std::map<std::string, std::string> aliases;  // symlink/hardlink entry -> target entry
  int64_t in_memory = 0;                         // bytes of entries' data held now
  {
    ArchiveReader a = TRY(OpenReader(fd, name));
    archive_entry* e;
    int spool_n = 0;
    for (int64_t ordinal = 0;; ++ordinal) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ArchiveError(a.get(), "read " + name);
      std::string n = CleanName(archive_entry_pathname(e));
      if (const char* hl = archive_entry_hardlink(e)) {
        aliases[n] = CleanName(hl);
        continue;
      }
      if (archive_entry_filetype(e) == AE_IFLNK) {
        std::string dir = n.find('/') == std::string::npos ? "" : n.substr(0, n.rfind('/'));
        aliases[n] = ResolveRel(dir, archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
        continue;
      }
      if (archive_entry_filetype(e) != AE_IFREG) continue;
      if (entries.size() >= kMaxEntries && !entries.count(n))
        return Error(Errc::kInvalidArgument, name + ": more than " +
                                                 std::to_string(kMaxEntries) +
                                                 " files in the archive; not an image archive");
      // A later entry of the same name replaces an earlier one (as tar -x would).
      if (auto old = entries.find(n); old != entries.end() && old->second.in_memory) {
        in_memory -= static_cast<int64_t>(old->second.data.size());
        entries.erase(old);
      }
      Entry ent;
      ent.size = archive_entry_size(e);
      ent.ordinal = ordinal;
      bool top = TopLevelMetadata(n) && ent.size <= kMaxJsonEntry;
      bool json = EndsWith(n, ".json");  // docker-archive configs, which can be large
      if (top || ((ent.size <= kSmallEntry || json) && in_memory + ent.size <= kMemoryBudget)) {
        ent.data = TRY(ReadEntry(a.get(), "read " + name + " entry " + n));
        ent.in_memory = true;
        if (!top) in_memory += static_cast<int64_t>(ent.data.size());
      } else if (!seekable) {
        ent.spool = txn.dir() + "/spool-" + std::to_string(spool_n++);
        int sfd = ::open(ent.spool.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (sfd < 0) return Error::FromErrno(errno, "open " + ent.spool);
        UniqueFd out(sfd);
        const void* buf;
        size_t len;
        la_int64_t off;
        for (;;) {
          int rr = archive_read_data_block(a.get(), &buf, &len, &off);
          if (rr == ARCHIVE_EOF) break;
          if (rr < ARCHIVE_WARN) return ArchiveError(a.get(), "read " + name + " entry " + n);
          TRY(WriteAll(out.get(), std::string_view(static_cast<const char*>(buf), len),
                       ent.spool));
        }
      } else {
        archive_read_data_skip(a.get());
      }
      entries[n] = std::move(ent);
    }
  }
  auto resolve = [&](std::string n) {
    n = CleanName(n);
    for (int i = 0; i < 16 && aliases.count(n); ++i) n = aliases[n];
    return n;
  };
  int64_t metadata = 0;  // bytes of configs and manifests read so far
  // An entry not kept in memory in pass 1, read now: from its spooled copy, or by reading
  // the (seekable) archive again up to it.
  auto fetch = [&](const std::string& n, const Entry& ent) -> Result<std::string> {
    if (!ent.spool.empty()) return ReadFile(ent.spool);
    if (::lseek(fd, start, SEEK_SET) < 0) return Error::FromErrno(errno, "lseek " + name);
    ArchiveReader a = TRY(OpenReader(fd, name));
    archive_entry* e;
    for (int64_t ordinal = 0;; ++ordinal) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ArchiveError(a.get(), "read " + name);
      if (ordinal == ent.ordinal) return ReadEntry(a.get(), "read " + name + " entry " + n);
    }
    return Error(Errc::kCorrupt, name + ": entry " + n + " is gone from the archive");
  };
  auto small = [&](const std::string& n, const std::string& what) -> Result<std::string> {
    auto it = entries.find(resolve(n));
    if (it == entries.end())
      return Error(Errc::kCorrupt, name + ": " + what + " " + n + " is missing from the archive");
    const Entry& ent = it->second;
    if (ent.size > kMaxJsonEntry)
      return Error(Errc::kUnsupported, name + ": " + what + " " + n + " is too large (" +
                                           std::to_string(ent.size) + " bytes, at most " +
                                           std::to_string(kMaxJsonEntry) + ")");
    metadata += ent.size;
    if (metadata > kMaxMetadata)
      return Error(Errc::kUnsupported, name + ": the configs and manifests of its images " +
                                           "exceed " + std::to_string(kMaxMetadata >> 20) +
                                           " MiB in all");
    if (ent.in_memory) return ent.data;
    return fetch(it->first, ent);
  };

  // ---- the images the archive describes.
  std::vector<ImagePlan> plans;
  if (entries.count("manifest.json")) {
    auto j = TRY(oci::ParseJson(entries["manifest.json"].data, name + " manifest.json"));
    if (!j.is_array())
      return Error(Errc::kInvalidArgument, name + ": manifest.json is not an array");
    for (const auto& m : j) {
      ImagePlan p;
      try {
        std::string cfg_name = m.at("Config").get<std::string>();
        p.config = TRY(small(cfg_name, "config"));
        if (m.contains("RepoTags") && m["RepoTags"].is_array())
          for (const auto& t : m["RepoTags"]) p.tags.push_back(t.get<std::string>());
        for (const auto& l : m.at("Layers")) p.layers.push_back({resolve(l.get<std::string>())});
      } catch (const std::exception& e) {
        return Error(Errc::kInvalidArgument, name + ": manifest.json: " + e.what());
      }
      plans.push_back(std::move(p));
    }
  } else if (entries.count("index.json")) {
    auto blob = [&](const oci::Descriptor& d, const std::string& what) -> Result<std::string> {
      std::string bytes = TRY(small("blobs/sha256/" + d.digest.hex(), what));
      Digest got = Digest::Of(bytes);
      if (got != d.digest)
        return Error(Errc::kCorrupt, what + " " + d.digest.str() + ": content has digest " +
                                         got.str() + ", index says " + d.digest.str());
      return bytes;
    };
    oci::Index idx = TRY(oci::ParseIndex(entries["index.json"].data, name + " index.json"));
    for (const auto& top : idx.manifests) {
      oci::Descriptor md = top;
      // Nested indexes: take linux/amd64 (or the only manifest).
      for (int depth = 0; oci::IsIndexMediaType(md.media_type) && depth < 4; ++depth) {
        oci::Index inner = TRY(oci::ParseIndex(TRY(blob(md, "index")), "index " + md.digest.str()));
        const oci::Descriptor* pick = nullptr;
        for (const auto& c : inner.manifests)
          if ((c.platform.os.empty() || c.platform.os == "linux") &&
              (c.platform.architecture.empty() || c.platform.architecture == "amd64")) {
            pick = &c;
            break;
          }
        if (!pick)
          return Error(Errc::kUnsupported, name + ": index " + md.digest.str() +
                                               " has no linux/amd64 image");
        md = *pick;
      }
      oci::Manifest man =
          TRY(oci::ParseManifest(TRY(blob(md, "manifest")), "manifest " + md.digest.str()));
      ImagePlan p;
      p.config = TRY(blob(man.config, "config"));
      std::string n = AnnotatedName(top.annotations);
      if (n.empty()) n = AnnotatedName(md.annotations);
      if (!n.empty()) p.tags.push_back(n);
      for (const auto& l : man.layers)
        p.layers.push_back({resolve("blobs/sha256/" + l.digest.hex()), l.digest, l.size,
                            oci::OciLayerMediaType(l.media_type)});
      plans.push_back(std::move(p));
    }
  } else {
    return Error(Errc::kInvalidArgument,
                 name + ": not an image archive (no manifest.json or index.json)");
  }
  if (plans.empty()) return Error(Errc::kInvalidArgument, name + ": the archive holds no image");

  // ---- plan the layers: reuse what the store has, create driver layers for the rest.
  std::vector<Planned> planned;
  std::map<std::string, size_t> planned_by_chain;
  std::map<std::string, std::vector<size_t>> targets;  // entry -> planned layers
  std::vector<std::vector<std::string>> plan_tags(plans.size());
  for (size_t pi = 0; pi < plans.size(); ++pi) {
    auto& p = plans[pi];
    for (const auto& t : p.tags) plan_tags[pi].push_back(TRY(NormalizeTag(t).Wrap(name)));
    auto cfg = TRY(oci::ParseJson(p.config, name + " config"));
    std::vector<Digest> diff_ids;
    try {
      for (const auto& d : cfg.at("rootfs").at("diff_ids"))
        diff_ids.push_back(TRY(Digest::Parse(d.get<std::string>()).Wrap(name + " config")));
    } catch (const std::exception& e) {
      return Error(Errc::kInvalidArgument, name + ": config has no rootfs.diff_ids: " + e.what());
    }
    if (diff_ids.size() != p.layers.size())
      return Error(Errc::kCorrupt, name + ": config lists " + std::to_string(diff_ids.size()) +
                                       " diff_ids but the manifest " +
                                       std::to_string(p.layers.size()) + " layers");
    Digest chain, parent;
    std::string parent_cache;
    for (size_t k = 0; k < diff_ids.size(); ++k) {
      parent = chain;
      chain = k == 0 ? diff_ids[0] : ChainId(chain, diff_ids[k]);
      if (auto it = planned_by_chain.find(chain.hex()); it != planned_by_chain.end()) {
        parent_cache = planned[it->second].cache_id;
        continue;
      }
      if (auto rec = layers_.Get(chain); rec) {
        parent_cache = rec->cache_id;
        continue;
      }
      if (!entries.count(p.layers[k].entry))
        return Error(Errc::kCorrupt,
                     name + ": layer " + p.layers[k].entry + " is missing from the archive");
      Planned pl;
      pl.chain = chain;
      pl.parent_chain = parent;
      pl.diff_id = diff_ids[k];
      pl.cache_id = RandomHexId();
      pl.src = p.layers[k];
      TRY(txn.NoteDriverLayer(pl.cache_id));
      TRY(driver_->Create(pl.cache_id, parent_cache, graph::LayerKind::kImage));
      parent_cache = pl.cache_id;
      planned_by_chain[chain.hex()] = planned.size();
      targets[pl.src.entry].push_back(planned.size());
      planned.push_back(std::move(pl));
    }
  }

  // ---- fill: apply each needed entry into its layers and verify.
  auto verify = [&](const Planned& pl, const layer::ApplyResult& res) -> Result<void> {
    if (pl.src.digest && res.digest != *pl.src.digest)
      return Error(Errc::kCorrupt, "layer " + pl.src.digest->str() + ": content has digest " +
                                       res.digest.str() + ", manifest says " +
                                       pl.src.digest->str());
    if (res.diff_id != pl.diff_id)
      return Error(Errc::kCorrupt, "layer " + pl.diff_id.str() + ": content has digest " +
                                       res.diff_id.str() + ", manifest says " +
                                       pl.diff_id.str());
    return Ok();
  };
  bool tee_compressed_only = false;
  auto apply = [&](Planned& pl, const layer::ReadFn& read, int tee_fd,
                   int64_t total) -> Result<layer::ApplyResult> {
    Dir diff = TRY(driver_->OpenDiffDir(pl.cache_id));
    Progress progress("Loading layer " + pl.diff_id.Short(), total);
    UniqueFd split = TRY(TxnFile(txn, "split", &pl.u.split_tmp));
    layer::ApplyOptions opts;
    opts.tee_fd = tee_fd;
    opts.tar_split_fd = split.get();
    opts.tee_compressed_only = tee_compressed_only;
    if (Progress::Enabled()) opts.progress = [&](int64_t n) { progress.Update(n); };
    auto res = TRY(layer::Apply(diff, read, opts).Wrap("layer " + pl.src.entry));
    progress.Done();
    TRY(verify(pl, res));
    return res;
  };
  auto fd_reader = [](int in) -> layer::ReadFn {
    return [in](char* buf, size_t n) -> Result<size_t> {
      for (;;) {
        ssize_t r = ::read(in, buf, n);
        if (r >= 0) return static_cast<size_t>(r);
        if (errno != EINTR) return Error::FromErrno(errno, "read layer");
      }
    };
  };
  // Applies an entry available as a file into all its targets; the file is the kept blob.
  auto fill_from_file = [&](const std::string& path, const std::vector<size_t>& ts,
                            size_t first) -> Result<void> {
    for (size_t i = first; i < ts.size(); ++i) {
      Planned& pl = planned[ts[i]];
      int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (in < 0) return Error::FromErrno(errno, "open " + path);
      UniqueFd owner(in);
      struct stat bst;
      int64_t total = ::fstat(in, &bst) == 0 ? bst.st_size : -1;
      pl.u.res = TRY(apply(pl, fd_reader(in), -1, total));
      pl.u.cache_id = pl.cache_id;
      pl.u.blob_tmp = path;
      pl.filled = true;
    }
    return Ok();
  };
  int blob_n = 0;
  std::set<std::string> streamed;
  for (auto& [entry, ts] : targets) {
    Entry& ent = entries[entry];
    if (ent.in_memory) {
      ent.spool = txn.dir() + "/small-" + std::to_string(blob_n++);
      TRY(WriteFileAtomic(ent.spool, ent.data, 0600));
      ent.data.clear();
      ent.in_memory = false;
    }
    if (!ent.spool.empty()) TRY(fill_from_file(ent.spool, ts, 0));
    else streamed.insert(entry);
  }
  if (!streamed.empty()) {
    if (::lseek(fd, start, SEEK_SET) < 0) return Error::FromErrno(errno, "lseek " + name);
    ArchiveReader a = TRY(OpenReader(fd, name));
    archive_entry* e;
    size_t left = streamed.size();
    while (left > 0) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ArchiveError(a.get(), "read " + name);
      std::string n = CleanName(archive_entry_pathname(e));
      if (!streamed.count(n) || archive_entry_filetype(e) != AE_IFREG ||
          archive_entry_hardlink(e))
        continue;
      streamed.erase(n);
      --left;
      auto& ts = targets[n];
      std::string blob_path;
      UniqueFd tee = TRY(TxnFile(txn, "blob", &blob_path));
      archive* ar = a.get();
      layer::ReadFn read = [ar, n](char* buf, size_t len) -> Result<size_t> {
        la_ssize_t got = archive_read_data(ar, buf, len);
        if (got < 0) return ArchiveError(ar, "read entry " + n);
        return static_cast<size_t>(got);
      };
      // An uncompressed outer tar holds the entry's bytes as one range of the file: read
      // them with pread straight into the layer's buffers (libarchive would copy each byte
      // once more) and let libarchive seek past them. The first bytes come through
      // libarchive and are compared with the file at the computed offset, so a wrong
      // offset falls back to libarchive's reads.
      int64_t esize = archive_entry_size(e);
      if (archive_filter_count(ar) == 1 && archive_filter_code(ar, 0) == ARCHIVE_FILTER_NONE &&
          archive_entry_sparse_count(e) == 0 && esize > 4096) {
        int64_t off = start + archive_filter_bytes(ar, 0);
        std::string head(512, '\0'), check(512, '\0');
        la_ssize_t hn = archive_read_data(ar, head.data(), head.size());
        ssize_t cn = hn > 0 ? ::pread(fd, check.data(), static_cast<size_t>(hn), off) : -1;
        head.resize(hn > 0 ? static_cast<size_t>(hn) : 0);
        bool direct = hn > 0 && cn == hn && memcmp(head.data(), check.data(), head.size()) == 0;
        int64_t pos = off + static_cast<int64_t>(head.size());
        int64_t end = off + esize;
        size_t head_off = 0;
        read = [=, head = std::move(head)](char* buf, size_t len) mutable -> Result<size_t> {
          if (head_off < head.size()) {
            size_t k = std::min(len, head.size() - head_off);
            memcpy(buf, head.data() + head_off, k);
            head_off += k;
            return k;
          }
          if (!direct) {
            la_ssize_t got = archive_read_data(ar, buf, len);
            if (got < 0) return ArchiveError(ar, "read entry " + n);
            return static_cast<size_t>(got);
          }
          size_t want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(len), end - pos));
          if (want == 0) return size_t{0};
          for (;;) {
            ssize_t r = ::pread(fd, buf, want, pos);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return Error::FromErrno(errno, "read " + name + " entry " + n);
            if (r == 0) return Error(Errc::kCorrupt, name + ": entry " + n + " is truncated");
            pos += r;
            return static_cast<size_t>(r);
          }
        };
      }
      Planned& pl = planned[ts[0]];
      // A plain layer is kept as its tar-split, not as a blob: tee it only when another
      // layer is to be filled from the same entry.
      tee_compressed_only = ts.size() == 1;
      pl.u.res = TRY(apply(pl, read, tee.get(), archive_entry_size(e)));
      tee_compressed_only = false;
      pl.u.cache_id = pl.cache_id;
      pl.u.blob_tmp = blob_path;
      pl.filled = true;
      tee.reset();
      TRY(fill_from_file(blob_path, ts, 1));
    }
  }
  for (const auto& pl : planned)
    if (!pl.filled)
      return Error(Errc::kCorrupt, name + ": layer " + pl.src.entry + " could not be read");

  // ---- register: blobs and layerdb entries bottom-up, then the images and their tags.
  for (auto& pl : planned)
    TRY(Register(txn, pl.u, pl.chain, pl.parent_chain, pl.src.media_type));
  LoadResult result;
  for (size_t pi = 0; pi < plans.size(); ++pi) {
    Digest id = TRY(RegisterImage(txn, plans[pi].config, plan_tags[pi]));
    if (plan_tags[pi].empty()) result.untagged.push_back(id);
    for (const auto& t : plan_tags[pi]) result.tags.push_back(t);
  }
  txn.Commit();
  return result;
}

}  // namespace shale::image
