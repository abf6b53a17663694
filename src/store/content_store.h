// Content store: blobs by digest under <root>/blobs/sha256/<hex>.
//
// Writes are staged in <root>/tmp (same file system), hashed while written, fsynced, verified
// against the expected digest and renamed into place: a blob is visible only complete and
// correct. Readers need no lock; writers hold the store lock (image::ImageStore::Lock).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/digest.h"
#include "util/error.h"
#include "util/fd.h"

namespace shale::store {

// A blob being written: a temporary file in <root>/tmp, hashed as it is written.
// Move-only; the destructor removes the temporary file unless Commit succeeded.
class BlobWriter {
 public:
  BlobWriter() = default;
  BlobWriter(BlobWriter&& o) noexcept;
  BlobWriter& operator=(BlobWriter&& o) noexcept;
  ~BlobWriter();

  Result<void> Write(std::string_view data);
  int64_t offset() const { return offset_; }
  int fd() const { return fd_.get(); }
  const std::string& temp_path() const { return temp_path_; }

 private:
  friend class ContentStore;
  UniqueFd fd_;
  std::string temp_path_;
  Sha256 sha_;
  int64_t offset_ = 0;
};

class ContentStore {
 public:
  // Creates <root>/blobs/sha256 and <root>/tmp if missing.
  static Result<ContentStore> Open(const std::string& root);

  std::string BlobPath(const Digest& d) const;
  const std::string& tmp_dir() const { return tmp_; }
  bool Has(const Digest& d) const;
  // kNotFound naming the digest.
  Result<int64_t> Size(const Digest& d) const;
  Result<UniqueFd> OpenBlob(const Digest& d) const;
  // Reads a (small) blob and checks its digest; kCorrupt if the bytes do not match.
  Result<std::string> ReadBlob(const Digest& d) const;

  // Starts a write staged in `staging_dir` (default <root>/tmp).
  Result<BlobWriter> Writer(const std::string& staging_dir = "");
  // fsync + verify (`expected` optional; kCorrupt on mismatch) + rename. `*created` is false
  // when an identical blob was already there (not an error).
  Result<Digest> Commit(BlobWriter&& w, std::optional<Digest> expected, bool* created = nullptr);
  // Writes a small blob in one go.
  Result<Digest> Put(std::string_view data, bool* created = nullptr);
  // Moves an already written temporary file (same file system) whose digest the caller
  // computed while writing it into place: fsync + rename. Removes `temp_path` if the blob
  // already exists.
  Result<void> Adopt(const std::string& temp_path, const Digest& d, bool* created = nullptr);
  // Missing is success.
  Result<void> Delete(const Digest& d);
  Result<std::vector<Digest>> List() const;

 private:
  std::string root_;
  std::string blobs_;
  std::string tmp_;
};

}  // namespace shale::store
