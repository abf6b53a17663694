// pull / push through the image store against a real registry (docker-registry): the ingest
// area's states — a partial download resumed with Range, a corrupt partial refused and
// collected — and a pushed image pulled back with the same id.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <random>

#include "image/image_store.h"
#include "registry/test_registry.h"
#include "util/fs.h"

namespace shale::image {
namespace {

using registry::testing::TestRegistry;

registry::ClientOptions Opts() {
  registry::ClientOptions o;
  o.auth_files.own = "/nonexistent/shale-test/auth.json";
  o.auth_files.others.clear();
  o.certs_dirs.clear();
  return o;
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(reg_.Start({}), "");
    auto t = ScopedTempDir::Make("/tmp", "shale-pull-test-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
    // An image with one layer of incompressible bytes, pushed from store "a".
    std::string rootfs = tmp_.path() + "/rootfs";
    ASSERT_TRUE(MakeDirsAbs(rootfs + "/data"));
    std::string bytes(400000, '\0');
    std::mt19937 rng(42);
    for (auto& c : bytes) c = static_cast<char>(rng());
    ASSERT_TRUE(WriteFileAtomic(rootfs + "/data/random.bin", bytes));
    auto a = ImageStore::Open(tmp_.path() + "/a");
    ASSERT_TRUE(a) << a.error().message();
    auto lock = (*a)->Lock(FileLock::Mode::kExclusive);
    ASSERT_TRUE(lock);
    ref_ = reg_.host() + "/t/img:1";
    ImportOptions io;
    io.tag = ref_;
    auto img = (*a)->Import(rootfs, io);
    ASSERT_TRUE(img) << img.error().message();
    id_ = img->id;
    PushOptions po;
    po.client = Opts();
    auto pushed = (*a)->Push(ref_, po);
    ASSERT_TRUE(pushed) << pushed.error().message();
    EXPECT_EQ(pushed->blobs_uploaded, 2);
    // The layer blob as the registry holds it.
    auto c = registry::Client::Connect(reg_.host(), Opts());
    ASSERT_TRUE(c);
    auto man = (*c)->GetManifest("t/img", "1");
    ASSERT_TRUE(man);
    auto m = oci::ParseManifest(man->bytes, "manifest");
    ASSERT_TRUE(m);
    ASSERT_EQ(m->layers.size(), 1u);
    layer_ = m->layers[0].digest;
    auto blob = (*c)->GetBlobBytes("t/img", layer_);
    ASSERT_TRUE(blob);
    blob_ = *blob;
    auto b = ImageStore::Open(tmp_.path() + "/b");
    ASSERT_TRUE(b);
    b_ = std::move(*b);
  }

  std::string Ingest() const { return tmp_.path() + "/b/tmp/ingest-" + layer_.hex(); }
  int CountInLog(const std::string& needle) const {
    std::ifstream in(reg_.log_path());
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
    return n;
  }

  TestRegistry reg_;
  ScopedTempDir tmp_;
  std::string ref_;
  Digest id_, layer_;
  std::string blob_;
  std::unique_ptr<ImageStore> b_;
};

TEST_F(PullTest, PartialIngestIsResumedWithRange) {
  auto lock = b_->Lock(FileLock::Mode::kExclusive);
  ASSERT_TRUE(lock);
  ASSERT_TRUE(WriteFileAtomic(Ingest(), blob_.substr(0, blob_.size() / 2), 0600));
  int ranged_before = CountInLog("\" 206 ");
  PullOptions po;
  po.client = Opts();
  auto r = b_->Pull(ref_, po);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->image_id, id_);
  EXPECT_EQ(r->layers_fetched, 1);
  for (int i = 0; i < 40 && CountInLog("\" 206 ") == ranged_before; ++i) usleep(25000);
  EXPECT_EQ(CountInLog("\" 206 "), ranged_before + 1);  // one ranged GET for the rest
  EXPECT_FALSE(PathExists(Ingest()));  // became the kept blob
  auto img = b_->Resolve(ref_);
  ASSERT_TRUE(img);
  EXPECT_EQ(img->id, id_);
}

// A pull killed after the whole blob arrived: the next one checks the file and sends no
// request for it (a Range past the end would be a 416 that curl takes for a cut transfer).
TEST_F(PullTest, CompleteIngestIsVerifiedWithoutARequest) {
  auto lock = b_->Lock(FileLock::Mode::kExclusive);
  ASSERT_TRUE(lock);
  ASSERT_TRUE(WriteFileAtomic(Ingest(), blob_, 0600));
  int gets_before = CountInLog("/blobs/" + layer_.str());
  PullOptions po;
  po.client = Opts();
  auto r = b_->Pull(ref_, po);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->image_id, id_);
  EXPECT_EQ(r->layers_resumed, 1);
  usleep(300000);  // the registry logs after answering
  EXPECT_EQ(CountInLog("/blobs/" + layer_.str()), gets_before);
  EXPECT_FALSE(PathExists(Ingest()));
}

// What a killed pull left can be bad: the layer then fails to verify, and the pull starts
// over from an emptied ingest file instead of failing (or failing forever after).
TEST_F(PullTest, CorruptPartialIngestIsDiscardedAndThePullStartsOver) {
  auto lock = b_->Lock(FileLock::Mode::kExclusive);
  ASSERT_TRUE(lock);
  std::string bad = blob_.substr(0, blob_.size() / 2);
  bad[bad.size() / 2] ^= 0x55;
  ASSERT_TRUE(WriteFileAtomic(Ingest(), bad, 0600));
  PullOptions po;
  po.client = Opts();
  auto r = b_->Pull(ref_, po);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->image_id, id_);
  EXPECT_EQ(r->layers_resumed, 0);  // the second attempt downloaded it whole
  EXPECT_FALSE(PathExists(Ingest()));
  auto list = b_->List();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
}

// A corrupt blob in the registry, with nothing resumed: refused naming it, store unchanged.
TEST_F(PullTest, CorruptBlobInTheRegistryIsRefusedNamingItsDigest) {
  auto lock = b_->Lock(FileLock::Mode::kExclusive);
  ASSERT_TRUE(lock);
  // docker-registry's filesystem layout: blobs/sha256/<2>/<hex>/data.
  std::string data = reg_.dir() + "/data/docker/registry/v2/blobs/sha256/" +
                     layer_.hex().substr(0, 2) + "/" + layer_.hex() + "/data";
  ASSERT_TRUE(PathExists(data)) << data;
  std::string bad = blob_;
  bad[bad.size() / 3] ^= 0x55;
  ASSERT_TRUE(WriteFileAtomic(data, bad, 0644));
  PullOptions po;
  po.client = Opts();
  auto r = b_->Pull(ref_, po);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorrupt);
  EXPECT_NE(r.error().message().find(layer_.str()), std::string::npos) << r.error().message();
  EXPECT_FALSE(PathExists(Ingest()));
  auto list = b_->List();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

TEST_F(PullTest, PresentImageIsOneManifestRequestAndNoBlob) {
  auto lock = b_->Lock(FileLock::Mode::kExclusive);
  ASSERT_TRUE(lock);
  PullOptions po;
  po.client = Opts();
  ASSERT_TRUE(b_->Pull(ref_, po));
  usleep(200000);  // the first pull's log lines
  int gets = CountInLog("\"GET /v2/");
  auto again = b_->Pull(ref_, po);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(again->up_to_date);
  EXPECT_EQ(again->stats.manifest_gets, 1);
  EXPECT_EQ(again->stats.blob_gets, 0);
  // On the wire: the /v2/ ping and the manifest (the loopback registry's refused TLS
  // handshake before the ping sends no HTTP request).
  // The registry writes its access log after answering: give it a moment.
  for (int i = 0; i < 40 && CountInLog("\"GET /v2/") - gets < 2; ++i) usleep(25000);
  usleep(100000);
  EXPECT_EQ(CountInLog("\"GET /v2/") - gets, 2);
}

}  // namespace
}  // namespace shale::image
