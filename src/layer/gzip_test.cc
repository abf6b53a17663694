// gzip streams as other tools write them (pigz: many blocks, empty stored blocks, sync
// flushes; gzip: several members), fed in chunks of every awkward size.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "layer/layer.h"
#include "layer/test_util.h"
#include "util/digest.h"

namespace shale::layer {
namespace {

using namespace testing;

// A tar of compressible and incompressible files, about `kb` KiB.
std::string SampleTar(size_t kb) {
  std::mt19937 rng(42);
  std::vector<TarEntry> es;
  size_t total = 0;
  for (int i = 0; total < kb * 1024; ++i) {
    std::string data;
    size_t n = 1000 + rng() % 200000;
    data.resize(n);
    if (i % 2) {
      for (auto& c : data) c = static_cast<char>(rng());
    } else {
      for (size_t k = 0; k < n; ++k) data[k] = "abcdefgh\n"[(k / 7 + i) % 9];
    }
    es.push_back(File("d" + std::to_string(i % 3) + "/f" + std::to_string(i), data));
    total += n;
  }
  es.push_back(File("empty", ""));
  return MakeTar(es);
}

std::string Filter(const std::string& cmd, const std::string& in, const std::string& dir) {
  std::string inp = dir + "/in", outp = dir + "/out";
  EXPECT_TRUE(WriteFileAtomic(inp, in, 0600));
  EXPECT_EQ(system((cmd + " < " + inp + " > " + outp).c_str()), 0) << cmd;
  return Slurp(outp);
}

void ExpectApplies(const std::string& tar, const std::string& blob, const std::string& what) {
  for (size_t chunk : {size_t{1} << 20, size_t{65536 + 3}, size_t{4096}, size_t{511},
                       size_t{7}}) {
    if (chunk < 4096 && blob.size() > (2u << 20)) continue;
    Sandbox sb;
    auto r = ApplyString(sb.root, blob, Whiteouts::kOverlay, chunk);
    ASSERT_TRUE(r) << what << " chunk " << chunk << ": " << r.error().message();
    EXPECT_EQ(r->diff_id, Digest::Of(tar)) << what << " chunk " << chunk;
    EXPECT_EQ(r->digest, Digest::Of(blob)) << what << " chunk " << chunk;
    EXPECT_EQ(r->compression, Compression::kGzip);
  }
}

TEST(Gzip, PigzStreams) {
  ScopedTempDir tmp = std::move(ScopedTempDir::Make("/tmp", "gz-test-").value());
  for (size_t kb : {300, 6000}) {
    std::string tar = SampleTar(kb);
    for (const char* opts : {"-6 -n", "-1 -b 32", "-9 -b 128 -i", "-6 -n -p 4 -b 64"}) {
      std::string gz = Filter(std::string("pigz -c ") + opts, tar, tmp.path());
      ASSERT_FALSE(gz.empty());
      ExpectApplies(tar, gz, std::string("pigz ") + opts + " of " + std::to_string(kb) + " KiB");
    }
  }
}

TEST(Gzip, SeveralMembers) {
  ScopedTempDir tmp = std::move(ScopedTempDir::Make("/tmp", "gz-test-").value());
  std::string tar = SampleTar(3000);
  // Members ending at odd offsets, a tiny member and an empty one.
  std::vector<size_t> cuts = {1, 4097, 1 << 20, (1 << 20) + 10, tar.size() - 5, tar.size()};
  std::string gz;
  size_t prev = 0;
  for (size_t c : cuts) {
    gz += Filter("gzip -6 -n -c", tar.substr(prev, c - prev), tmp.path());
    prev = c;
  }
  gz += Filter("gzip -6 -n -c", "", tmp.path());
  ExpectApplies(tar, gz, "multi-member gzip");
}

}  // namespace
}  // namespace shale::layer
