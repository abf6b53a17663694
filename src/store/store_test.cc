#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "store/content_store.h"
#include "store/image_db.h"
#include "store/layer_store.h"
#include "util/fs.h"

namespace shale::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "shale-store-test-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
  }
  ScopedTempDir tmp_;
};

TEST_F(StoreTest, RepositoriesRoundTripInDockerShape) {
  std::string path = tmp_.path() + "/repositories.json";
  auto empty = Repositories::Load(path);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->repos().empty());
  Digest a = Digest::Of("a"), b = Digest::Of("b");
  Repositories r;
  r.Set("busybox", "busybox:latest", a);
  r.Set("busybox", "busybox:1", a);
  r.Set("localhost/x", "localhost/x:2", b);
  ASSERT_TRUE(r.Save(path));
  auto text = ReadFile(path);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find(R"("Repositories":{"busybox":{"busybox:1":")" + a.str()), std::string::npos)
      << *text;
  auto back = Repositories::Load(path);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->Lookup("busybox:latest"), a);
  EXPECT_EQ(back->Lookup("localhost/x:2"), b);
  EXPECT_EQ(back->RefsFor(a), (std::vector<std::string>{"busybox:1", "busybox:latest"}));
  EXPECT_EQ(back->Remove("localhost/x:2"), b);
  EXPECT_EQ(back->repos().count("localhost/x"), 0u);  // empty repos disappear
  EXPECT_FALSE(back->Lookup("nope:latest"));
}

TEST_F(StoreTest, RepositoriesSaveIsAtomic) {
  std::string path = tmp_.path() + "/repositories.json";
  Repositories r;
  r.Set("busybox", "busybox:latest", Digest::Of("a"));
  ASSERT_TRUE(r.Save(path));
  // A save that cannot complete (directory read-only for the temp file) leaves the old file.
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0500), 0);
  r.Set("busybox", "busybox:2", Digest::Of("b"));
  bool root = geteuid() == 0;
  auto res = r.Save(path);
  ::chmod(tmp_.path().c_str(), 0700);
  if (!root) {
    EXPECT_FALSE(res);
  }
  auto names = ListDir(tmp_.path());
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, std::vector<std::string>{"repositories.json"});  // no temp file left
  auto back = Repositories::Load(path);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->Lookup("busybox:latest"));
}

TEST_F(StoreTest, RepositoriesCorruptIsReported) {
  std::string path = tmp_.path() + "/repositories.json";
  ASSERT_TRUE(WriteFileAtomic(path, "{not json"));
  auto r = Repositories::Load(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorrupt);
}

TEST_F(StoreTest, ContentStoreVerifiesOnCommit) {
  auto cs = ContentStore::Open(tmp_.path());
  ASSERT_TRUE(cs);
  auto w = cs->Writer();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Write("hello"));
  std::string tmp_path = w->temp_path();
  auto bad = cs->Commit(std::move(*w), Digest::Of("other"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kCorrupt);
  EXPECT_FALSE(PathExists(tmp_path));
  EXPECT_FALSE(cs->Has(Digest::Of("hello")));

  bool created = false;
  auto d = cs->Put("hello", &created);
  ASSERT_TRUE(d);
  EXPECT_TRUE(created);
  EXPECT_EQ(*d, Digest::Of("hello"));
  EXPECT_TRUE(cs->Has(*d));
  EXPECT_EQ(*cs->ReadBlob(*d), "hello");
  ASSERT_TRUE(cs->Put("hello", &created));
  EXPECT_FALSE(created);  // identical blob: success, not an error
  EXPECT_EQ(cs->List()->size(), 1u);
  ASSERT_TRUE(cs->Delete(*d));
  EXPECT_FALSE(cs->Has(*d));
  EXPECT_TRUE(ListDir(tmp_.path() + "/tmp")->empty());
}

TEST_F(StoreTest, LayerStoreEntriesAreWholeOrAbsent) {
  auto ls = LayerStore::Open(tmp_.path() + "/layerdb", tmp_.path() + "/tmp");
  ASSERT_TRUE(ls);
  LayerRecord base;
  base.diff_id = Digest::Of("l1");
  base.chain_id = base.diff_id;
  base.cache_id = "c1";
  base.size = 10;
  base.blob_digest = Digest::Of("blob1");
  base.blob_media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  base.blob_size = 5;
  base.tar_size = 2048;
  ASSERT_TRUE(ls->Put(base, tmp_.path() + "/tmp"));
  LayerRecord top;
  top.diff_id = Digest::Of("l2");
  top.parent = base.chain_id;
  top.chain_id = ChainId(base.chain_id, top.diff_id);
  top.cache_id = "c2";
  ASSERT_TRUE(ls->Put(top, tmp_.path() + "/tmp"));
  auto again = ls->Put(top, tmp_.path() + "/tmp");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kAlreadyExists);

  auto got = ls->Get(top.chain_id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->parent, base.chain_id);
  EXPECT_EQ(got->cache_id, "c2");
  auto b = ls->Get(base.chain_id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->blob_digest, base.blob_digest);
  EXPECT_EQ(b->blob_media_type, base.blob_media_type);
  EXPECT_EQ(b->tar_size, 2048);
  EXPECT_FALSE(PathExists(ls->EntryPath(base.chain_id) + "/parent"));
  EXPECT_EQ(*ReadFile(ls->EntryPath(top.chain_id) + "/diff"), top.diff_id.str());
  EXPECT_EQ(ls->List()->size(), 2u);

  MountRecord m{"ctr1", "ctr1-init", "ctr1", top.chain_id, Digest::Of("img")};
  ASSERT_TRUE(ls->PutMount(m, ""));
  auto ms = ls->ListMounts();
  ASSERT_TRUE(ms);
  ASSERT_EQ(ms->size(), 1u);
  EXPECT_EQ((*ms)[0].parent, top.chain_id);
  EXPECT_EQ((*ms)[0].init_id, "ctr1-init");
  ASSERT_TRUE(ls->RemoveMount("ctr1"));
  EXPECT_TRUE(ls->ListMounts()->empty());

  ASSERT_TRUE(ls->Remove(top.chain_id));
  EXPECT_FALSE(ls->Has(top.chain_id));
  auto missing = ls->Get(top.chain_id);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_TRUE(ListDir(tmp_.path() + "/tmp")->empty());
}

TEST_F(StoreTest, ImageDbIdIsDigestOfExactBytes) {
  auto db = ImageDb::Open(tmp_.path() + "/imagedb");
  ASSERT_TRUE(db);
  std::string cfg = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})";
  auto id = db->Put(cfg);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, Digest::Of(cfg));
  EXPECT_EQ(*db->Get(*id), cfg);
  // Tampering is detected.
  ASSERT_TRUE(WriteFileAtomic(tmp_.path() + "/imagedb/content/sha256/" + id->hex(), cfg + " "));
  auto bad = db->Get(*id);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kCorrupt);
  ASSERT_TRUE(db->SetLastTagTime(*id, "2024-01-01T00:00:00Z"));
  EXPECT_EQ(db->LastTagTime(*id), "2024-01-01T00:00:00Z");
  ASSERT_TRUE(db->Delete(*id));
  EXPECT_FALSE(db->Has(*id));
  EXPECT_EQ(db->LastTagTime(*id), "");
}

}  // namespace
}  // namespace shale::store
