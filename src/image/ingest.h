// A blob being downloaded into a file of the store's ingest area (tmp/ingest-<hex>), read by
// an extractor while it grows.
//
// Pull downloads several layers at once (docker's max-concurrent-downloads, 3) but must
// extract them in order, each over its parent. So each layer's bytes go to its own file,
// written by a download thread, and the extractor of that layer follows the file: a read
// past what is written waits until more arrives or the download ends. The file is the
// download's only buffer: a layer that finishes before its turn just waits on disk, and
// what an interrupted pull leaves is where the next pull resumes (with Range).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/fd.h"

namespace shale::image {

class IngestFile {
 public:
  // Opens (or creates, 0600) `path`. What it already holds counts as written: a resumed
  // download appends after it. A file longer than `size` (>= 0) is emptied first.
  static Result<std::unique_ptr<IngestFile>> Open(const std::string& path, int64_t size);

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  // Bytes present when opened (what a resumed download skips).
  int64_t resumed_from() const { return resumed_from_; }

  // Writer side (one thread). Append fails with kCancelled once Cancel() was called.
  Result<void> Append(std::string_view data);
  // Empties the file (a resumed prefix that did not verify) and starts over from zero.
  // Only before the reader has read anything.
  Result<void> Restart();
  // The download ended: Ok, or why it failed (the reader then gets that error).
  void Finish(Result<void> result);

  // Reader side (one thread): up to n bytes at `offset`, waiting for them; 0 at the end of
  // a finished download, the download's error if it failed.
  Result<size_t> ReadAt(int64_t offset, char* buf, size_t n);
  // Stops the writer at its next Append and wakes the reader.
  void Cancel();
  bool cancelled();
  // Waits for Finish; returns what the download returned.
  Result<void> Wait();

 private:
  IngestFile(std::string path, UniqueFd fd, int64_t have)
      : path_(std::move(path)), fd_(std::move(fd)), written_(have), resumed_from_(have) {}

  std::string path_;
  UniqueFd fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t written_;
  int64_t resumed_from_;
  bool done_ = false, cancelled_ = false;
  Result<void> result_ = Ok();
};

}  // namespace shale::image
