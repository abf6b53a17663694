#include "store/layer_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/strings.h"

namespace shale::store {
namespace {

// A file of an entry being staged; the entry is made durable as a whole (one syncfs) before
// it is renamed into place.
Result<void> WriteStaged(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  return WriteAll(fd, data, path);
}

Result<std::string> ReadTrimmed(const std::string& path) {
  std::string s = TRY(ReadFile(path));
  return std::string(Trim(s));
}

Result<std::string> MakeStaging(const std::string& dir, std::string_view prefix) {
  TRY(MakeDirsAbs(dir, 0700));
  std::string tmpl = dir + "/" + std::string(prefix) + "XXXXXX";
  if (!mkdtemp(tmpl.data())) return Error::FromErrno(errno, "mkdtemp " + tmpl);
  return tmpl;
}

Result<void> RenameDirNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    (void)RemoveTreeAbs(from);
    if (err == EEXIST || err == ENOTEMPTY) return Error(Errc::kAlreadyExists, to + ": exists");
    return Error::FromErrno(err, "rename " + from + " to " + to);
  }
  return FsyncPath(Dirname(to));
}

// Renames `path` into tmp/ first, so the entry disappears atomically, then removes it.
Result<void> RemoveAtomically(const std::string& path, const std::string& tmp) {
  if (!PathExists(path)) return Ok();
  std::string gone = TRY(MakeStaging(tmp, "gone-"));
  std::string dst = gone + "/entry";
  if (::rename(path.c_str(), dst.c_str()) != 0) {
    (void)RemoveTreeAbs(gone);
    if (errno == ENOENT) return Ok();
    return Error::FromErrno(errno, "rename " + path);
  }
  TRY(FsyncPath(Dirname(path)));
  return RemoveTreeAbs(gone);
}

}  // namespace

Result<LayerStore> LayerStore::Open(const std::string& root, const std::string& tmp) {
  LayerStore s;
  s.root_ = root;
  s.tmp_ = tmp;
  TRY(MakeDirsAbs(root + "/sha256", 0700));
  TRY(MakeDirsAbs(root + "/mounts", 0700));
  TRY(MakeDirsAbs(tmp, 0700));
  return s;
}

std::string LayerStore::EntryPath(const Digest& chain_id) const {
  return root_ + "/sha256/" + chain_id.hex();
}

bool LayerStore::Has(const Digest& chain_id) const {
  return PathExists(EntryPath(chain_id) + "/cache-id");
}

Result<LayerRecord> LayerStore::Get(const Digest& chain_id) const {
  std::string dir = EntryPath(chain_id);
  if (!PathExists(dir)) return Error(Errc::kNotFound, "layer " + chain_id.str() + ": not found");
  auto wrap = [&](Error e) {
    return Error(Errc::kCorrupt, "layerdb entry " + chain_id.str() + ": " + e.message());
  };
  LayerRecord r;
  r.chain_id = chain_id;
  auto diff = ReadTrimmed(dir + "/diff");
  if (!diff) return wrap(std::move(diff).error());
  auto d = Digest::Parse(*diff);
  if (!d) return wrap(std::move(d).error());
  r.diff_id = *d;
  auto cache = ReadTrimmed(dir + "/cache-id");
  if (!cache) return wrap(std::move(cache).error());
  r.cache_id = *cache;
  if (PathExists(dir + "/parent")) {
    auto p = ReadTrimmed(dir + "/parent");
    if (!p) return wrap(std::move(p).error());
    auto pd = Digest::Parse(*p);
    if (!pd) return wrap(std::move(pd).error());
    r.parent = *pd;
  }
  auto num = [&](const char* name) -> int64_t {
    auto s = ReadTrimmed(dir + "/" + name);
    if (!s) return 0;
    return strtoll(s->c_str(), nullptr, 10);
  };
  r.size = num("size");
  r.blob_size = num("blob-size");
  r.tar_size = num("tar-size");
  r.has_tar_split = PathExists(dir + "/tar-split.zst");
  if (PathExists(dir + "/blob-digest")) {
    auto b = ReadTrimmed(dir + "/blob-digest");
    if (b) {
      auto bd = Digest::Parse(*b);
      if (bd) r.blob_digest = *bd;
    }
    auto mt = ReadTrimmed(dir + "/blob-media-type");
    if (mt) r.blob_media_type = *mt;
  }
  return r;
}

Result<std::vector<LayerRecord>> LayerStore::List() const {
  std::vector<LayerRecord> out;
  for (const auto& n : TRY(ListDir(root_ + "/sha256"))) {
    if (!IsHex64(n)) continue;
    auto r = Get(Digest::FromHex(n));
    if (r) out.push_back(std::move(*r));
  }
  return out;
}

Result<void> LayerStore::Put(const LayerRecord& rec, const std::string& staging_dir) {
  if (Has(rec.chain_id))
    return Error(Errc::kAlreadyExists, "layer " + rec.chain_id.str() + ": exists");
  std::string dir = TRY(MakeStaging(staging_dir, "layer-"));
  auto fill = [&]() -> Result<void> {
    TRY(WriteStaged(dir + "/diff", rec.diff_id.str()));
    TRY(WriteStaged(dir + "/size", std::to_string(rec.size)));
    TRY(WriteStaged(dir + "/cache-id", rec.cache_id));
    if (!rec.parent.empty()) TRY(WriteStaged(dir + "/parent", rec.parent.str()));
    if (!rec.blob_digest.empty()) {
      TRY(WriteStaged(dir + "/blob-digest", rec.blob_digest.str()));
      TRY(WriteStaged(dir + "/blob-media-type", rec.blob_media_type));
      TRY(WriteStaged(dir + "/blob-size", std::to_string(rec.blob_size)));
    }
    TRY(WriteStaged(dir + "/tar-size", std::to_string(rec.tar_size)));
    if (!rec.tar_split_src.empty()) {
      if (::rename(rec.tar_split_src.c_str(), (dir + "/tar-split.zst").c_str()) != 0)
        return Error::FromErrno(errno, "rename " + rec.tar_split_src + " into " + dir);
    }
    // One flush for every file of the entry (an fsync each cost ~1 ms apiece on ext4).
    TRY(SyncFsPath(dir));
    return Ok();
  };
  if (auto r = fill(); !r) {
    (void)RemoveTreeAbs(dir);
    return r;
  }
  return RenameDirNoReplace(dir, EntryPath(rec.chain_id));
}

Result<void> LayerStore::Remove(const Digest& chain_id) {
  return RemoveAtomically(EntryPath(chain_id), tmp_);
}

// A container's mount record lives as long as the container: like Docker, which syncs
// neither a container's layers nor its layerdb/mounts entry, it is written and renamed into
// place without fsync (atomic, not durable: after a power loss the container may be gone).
Result<void> LayerStore::PutMount(const MountRecord& rec, const std::string& staging_dir) {
  std::string dir = TRY(MakeStaging(staging_dir.empty() ? tmp_ : staging_dir, "mount-"));
  auto write = [&](const char* name, std::string_view data) -> Result<void> {
    std::string path = dir + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return Error::FromErrno(errno, "open " + path);
    return WriteAll(fd.get(), data, path);
  };
  auto fill = [&]() -> Result<void> {
    TRY(write("init-id", rec.init_id));
    TRY(write("mount-id", rec.mount_id));
    if (!rec.parent.empty()) TRY(write("parent", rec.parent.str()));
    if (!rec.image.empty()) TRY(write("image", rec.image.str()));
    return Ok();
  };
  if (auto r = fill(); !r) {
    (void)RemoveTreeAbs(dir);
    return r;
  }
  std::string to = root_ + "/mounts/" + rec.container_id;
  if (::renameat2(AT_FDCWD, dir.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    (void)RemoveTreeAbs(dir);
    if (err == EEXIST || err == ENOTEMPTY)
      return Error(Errc::kAlreadyExists, "record container " + rec.container_id + ": " + to +
                                             " exists");
    return Error::FromErrno(err, "record container " + rec.container_id + ": rename " + dir +
                                     " to " + to);
  }
  return Ok();
}

Result<MountRecord> LayerStore::GetMount(const std::string& ctr) const {
  std::string dir = root_ + "/mounts/" + ctr;
  if (!PathExists(dir)) return Error(Errc::kNotFound, "container mount " + ctr + ": not found");
  MountRecord m;
  m.container_id = ctr;
  m.init_id = ReadTrimmed(dir + "/init-id").value_or("");
  m.mount_id = ReadTrimmed(dir + "/mount-id").value_or("");
  if (auto p = ReadTrimmed(dir + "/parent"); p)
    if (auto d = Digest::Parse(*p); d) m.parent = *d;
  if (auto p = ReadTrimmed(dir + "/image"); p)
    if (auto d = Digest::Parse(*p); d) m.image = *d;
  return m;
}

Result<std::vector<MountRecord>> LayerStore::ListMounts() const {
  std::vector<MountRecord> out;
  for (const auto& n : TRY(ListDir(root_ + "/mounts"))) {
    auto m = GetMount(n);
    if (m) out.push_back(std::move(*m));
  }
  return out;
}

Result<void> LayerStore::RemoveMount(const std::string& ctr) {
  // Not synced (see PutMount). The three small files go directly, the directory last: a
  // crash in between leaves a record without its files, which GetMount treats as empty.
  std::string dir = root_ + "/mounts/" + ctr;
  for (const char* name : {"init-id", "mount-id", "parent", "image"}) {
    std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      if (errno == ENOTDIR) break;
      return Error::FromErrno(errno, "remove container record " + ctr + ": unlink " + path);
    }
  }
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Ok();
  return RemoveTreeAbs(dir).Wrap("remove container record " + ctr);
}

}  // namespace shale::store
