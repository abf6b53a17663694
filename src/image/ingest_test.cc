// The follow-reader pull uses to extract a layer while its download runs in another thread.
#include "image/ingest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "util/fs.h"

namespace shale::image {
namespace {

std::string ReadAll(IngestFile& f, Result<void>* end) {
  std::string out;
  char buf[7];  // odd size: reads straddle the writer's chunks
  for (;;) {
    auto n = f.ReadAt(static_cast<int64_t>(out.size()), buf, sizeof buf);
    if (!n) {
      *end = n.error();
      return out;
    }
    if (*n == 0) {
      *end = Ok();
      return out;
    }
    out.append(buf, *n);
  }
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::move(ScopedTempDir::Make("/tmp", "ingest-test-").value()); }
  std::string Path() const { return dir_.path() + "/ingest-x"; }
  ScopedTempDir dir_;
};

TEST_F(IngestTest, ReaderFollowsAGrowingFileToItsEnd) {
  auto f = IngestFile::Open(Path(), -1);
  ASSERT_TRUE(f) << f.error().message();
  std::string want;
  for (int i = 0; i < 200; ++i) want += "chunk " + std::to_string(i) + ";";
  std::thread writer([&] {
    for (size_t off = 0; off < want.size(); off += 50) {
      ASSERT_TRUE((*f)->Append(std::string_view(want).substr(off, 50)));
      if (off % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    (*f)->Finish(Ok());
  });
  Result<void> end;
  std::string got = ReadAll(**f, &end);
  writer.join();
  EXPECT_TRUE(end);
  EXPECT_EQ(got, want);
  EXPECT_EQ(ReadFile(Path()).value_or(""), want);
}

TEST_F(IngestTest, WhatAnEarlierPullLeftIsReadFirstAndAppendedTo) {
  ASSERT_TRUE(WriteFileAtomic(Path(), "left by a killed pull|", 0600));
  auto f = IngestFile::Open(Path(), 100);
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)->resumed_from(), 22);
  ASSERT_TRUE((*f)->Append("the rest"));
  (*f)->Finish(Ok());
  Result<void> end;
  EXPECT_EQ(ReadAll(**f, &end), "left by a killed pull|the rest");
  EXPECT_TRUE(end);
}

TEST_F(IngestTest, AFileLongerThanTheBlobIsEmptied) {
  ASSERT_TRUE(WriteFileAtomic(Path(), std::string(50, 'x'), 0600));
  auto f = IngestFile::Open(Path(), 10);
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)->resumed_from(), 0);
  EXPECT_EQ(ReadFile(Path()).value_or("?"), "");
}

TEST_F(IngestTest, TheDownloadErrorReachesTheReaderAfterTheBytesBeforeIt) {
  auto f = IngestFile::Open(Path(), -1);
  ASSERT_TRUE(f);
  ASSERT_TRUE((*f)->Append("partial"));
  (*f)->Finish(Error(Errc::kNetwork, "registry 127.0.0.1:1: connection dropped"));
  Result<void> end;
  EXPECT_EQ(ReadAll(**f, &end), "partial");
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code(), Errc::kNetwork);
  EXPECT_FALSE((*f)->Wait());
}

TEST_F(IngestTest, CancelStopsTheWriterAndWakesAWaitingReader) {
  auto f = IngestFile::Open(Path(), -1);
  ASSERT_TRUE(f);
  Result<size_t> r = size_t{0};
  std::thread reader([&] {
    char b[4];
    r = (*f)->ReadAt(0, b, sizeof b);  // nothing written: waits
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  (*f)->Cancel();
  reader.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCancelled);
  auto a = (*f)->Append("late");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), Errc::kCancelled);
}

TEST_F(IngestTest, RefusesAnythingButARegularFile) {
  ASSERT_EQ(::symlink("/etc/passwd", Path().c_str()), 0);
  auto f = IngestFile::Open(Path(), -1);
  EXPECT_FALSE(f);
}

}  // namespace
}  // namespace shale::image
