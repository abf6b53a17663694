#include "image/ingest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

namespace shale::image {

Result<std::unique_ptr<IngestFile>> IngestFile::Open(const std::string& path, int64_t size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Error::FromErrno(errno, "open " + path);
  UniqueFd owner(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return Error::FromErrno(errno, "fstat " + path);
  if (!S_ISREG(st.st_mode)) return Error(Errc::kCorrupt, path + " is not a regular file");
  int64_t have = st.st_size;
  if (size >= 0 && have > size) {
    if (::ftruncate(fd, 0) != 0) return Error::FromErrno(errno, "truncate " + path);
    have = 0;
  }
  return std::unique_ptr<IngestFile>(new IngestFile(path, std::move(owner), have));
}

Result<void> IngestFile::Append(std::string_view data) {
  int64_t at;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (cancelled_) return Error(Errc::kCancelled, "download of " + path_ + " cancelled");
    at = written_;
  }
  // Only this thread writes, so the bytes past written_ are ours until published below.
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::FromErrno(errno, "write " + path_);
    }
    data.remove_prefix(static_cast<size_t>(n));
    at += n;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    written_ = at;
  }
  cv_.notify_all();
  return Ok();
}

Result<void> IngestFile::Restart() {
  if (::ftruncate(fd_.get(), 0) != 0) return Error::FromErrno(errno, "truncate " + path_);
  std::lock_guard<std::mutex> l(mu_);
  written_ = 0;
  resumed_from_ = 0;
  return Ok();
}

void IngestFile::Finish(Result<void> result) {
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    result_ = std::move(result);
  }
  cv_.notify_all();
}

Result<size_t> IngestFile::ReadAt(int64_t offset, char* buf, size_t n) {
  int64_t avail;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return written_ > offset || done_ || cancelled_; });
    if (written_ <= offset) {
      if (cancelled_ && !done_) return Error(Errc::kCancelled, "download of " + path_ + " cancelled");
      if (!result_) return result_.error();
      return size_t{0};
    }
    avail = written_ - offset;
  }
  size_t want = static_cast<size_t>(std::min<int64_t>(avail, static_cast<int64_t>(n)));
  for (;;) {
    ssize_t r = ::pread(fd_.get(), buf, want, offset);
    if (r >= 0) {
      if (r == 0) return Error(Errc::kIo, path_ + ": shorter than the bytes written to it");
      return static_cast<size_t>(r);
    }
    if (errno != EINTR) return Error::FromErrno(errno, "read " + path_);
  }
}

void IngestFile::Cancel() {
  {
    std::lock_guard<std::mutex> l(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

bool IngestFile::cancelled() {
  std::lock_guard<std::mutex> l(mu_);
  return cancelled_;
}

Result<void> IngestFile::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return done_; });
  return result_;
}

}  // namespace shale::image
