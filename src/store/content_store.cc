#include "store/content_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "util/fs.h"

namespace shale::store {

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : fd_(std::move(o.fd_)),
      temp_path_(std::exchange(o.temp_path_, "")),
      sha_(std::move(o.sha_)),
      offset_(o.offset_) {}

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
  if (this != &o) {
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
    fd_ = std::move(o.fd_);
    temp_path_ = std::exchange(o.temp_path_, "");
    sha_ = std::move(o.sha_);
    offset_ = o.offset_;
  }
  return *this;
}

BlobWriter::~BlobWriter() {
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Result<void> BlobWriter::Write(std::string_view data) {
  sha_.Update(data);
  TRY(WriteAll(fd_.get(), data, temp_path_));
  offset_ += static_cast<int64_t>(data.size());
  return Ok();
}

Result<ContentStore> ContentStore::Open(const std::string& root) {
  ContentStore cs;
  cs.root_ = root;
  cs.blobs_ = root + "/blobs/sha256";
  cs.tmp_ = root + "/tmp";
  TRY(MakeDirsAbs(cs.blobs_, 0700));
  TRY(MakeDirsAbs(cs.tmp_, 0700));
  return cs;
}

std::string ContentStore::BlobPath(const Digest& d) const { return blobs_ + "/" + d.hex(); }

bool ContentStore::Has(const Digest& d) const { return PathExists(BlobPath(d)); }

Result<int64_t> ContentStore::Size(const Digest& d) const {
  struct stat st;
  if (::stat(BlobPath(d).c_str(), &st) != 0) {
    if (errno == ENOENT) return Error(Errc::kNotFound, "blob " + d.str() + ": not in the store");
    return Error::FromErrno(errno, "stat " + BlobPath(d));
  }
  return static_cast<int64_t>(st.st_size);
}

Result<UniqueFd> ContentStore::OpenBlob(const Digest& d) const {
  int fd = ::open(BlobPath(d).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Error(Errc::kNotFound, "blob " + d.str() + ": not in the store");
    return Error::FromErrno(errno, "open " + BlobPath(d));
  }
  return UniqueFd(fd);
}

Result<std::string> ContentStore::ReadBlob(const Digest& d) const {
  UniqueFd fd = TRY(OpenBlob(d));
  std::string data = TRY(ReadAll(fd.get(), BlobPath(d)));
  Digest got = Digest::Of(data);
  if (got != d)
    return Error(Errc::kCorrupt, "blob " + d.str() + ": content has digest " + got.str());
  return data;
}

Result<BlobWriter> ContentStore::Writer(const std::string& staging_dir) {
  std::string dir = staging_dir.empty() ? tmp_ : staging_dir;
  std::string tmpl = dir + "/blob-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "mkstemp " + tmpl);
  BlobWriter w;
  w.fd_ = UniqueFd(fd);
  w.temp_path_ = tmpl;
  return w;
}

Result<void> ContentStore::Adopt(const std::string& temp_path, const Digest& d, bool* created) {
  int fd = ::open(temp_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::FromErrno(errno, "open " + temp_path);
  UniqueFd owner(fd);
  if (::fsync(fd) != 0) return Error::FromErrno(errno, "fsync " + temp_path);
  ::fchmod(fd, 0644);
  std::string dst = BlobPath(d);
  if (PathExists(dst)) {
    ::unlink(temp_path.c_str());
    if (created) *created = false;
    return Ok();
  }
  // renameat2(RENAME_NOREPLACE) so an identical blob written meanwhile is kept as is.
  if (::renameat2(AT_FDCWD, temp_path.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      ::unlink(temp_path.c_str());
      if (created) *created = false;
      return Ok();
    }
    return Error::FromErrno(errno, "rename " + temp_path + " to " + dst);
  }
  TRY(FsyncPath(blobs_));
  if (created) *created = true;
  return Ok();
}

Result<Digest> ContentStore::Commit(BlobWriter&& w, std::optional<Digest> expected,
                                    bool* created) {
  Digest got = w.sha_.Finish();
  std::string tmp = std::exchange(w.temp_path_, "");
  w.fd_.reset();
  if (expected && *expected != got) {
    ::unlink(tmp.c_str());
    return Error(Errc::kCorrupt, "blob " + expected->str() + ": content has digest " + got.str());
  }
  auto r = Adopt(tmp, got, created);
  if (!r) {
    ::unlink(tmp.c_str());
    return std::move(r).error();
  }
  return got;
}

Result<Digest> ContentStore::Put(std::string_view data, bool* created) {
  BlobWriter w = TRY(Writer());
  TRY(w.Write(data));
  return Commit(std::move(w), std::nullopt, created);
}

Result<void> ContentStore::Delete(const Digest& d) {
  if (::unlink(BlobPath(d).c_str()) != 0 && errno != ENOENT)
    return Error::FromErrno(errno, "unlink " + BlobPath(d));
  return Ok();
}

Result<std::vector<Digest>> ContentStore::List() const {
  std::vector<Digest> out;
  for (const auto& n : TRY(ListDir(blobs_)))
    if (IsHex64(n)) out.push_back(Digest::FromHex(n));
  return out;
}

}  // namespace shale::store
