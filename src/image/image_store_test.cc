#include "image/image_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "store/image_db.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::image {
namespace {

using Files = std::vector<std::pair<std::string, std::string>>;  // name -> content

// A tar (pax) of regular files, built in memory with libarchive.
std::string Tar(const Files& files) {
  std::string out;
  std::unique_ptr<archive, FnDeleter<archive_write_free>> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_open(
      a.get(), &out, nullptr,
      [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& [name, data] : files) {
    std::unique_ptr<archive_entry, FnDeleter<archive_entry_free>> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    archive_entry_set_mtime(e.get(), 1700000000, 0);
    archive_write_header(a.get(), e.get());
    archive_write_data(a.get(), data.data(), data.size());
  }
  archive_write_close(a.get());
  return out;
}

// A docker-save archive of `layers`; `diff_ids` overrides the config's diffIDs.
std::string DockerArchive(const std::vector<std::string>& layers, const std::string& tag,
                          std::vector<Digest> diff_ids = {}) {
  if (diff_ids.empty())
    for (const auto& l : layers) diff_ids.push_back(Digest::Of(l));
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& d : diff_ids) ids.push_back(d.str());
  std::string config = nlohmann::json{{"architecture", "amd64"},
                                      {"os", "linux"},
                                      {"created", "2024-01-02T03:04:05Z"},
                                      {"rootfs", {{"type", "layers"}, {"diff_ids", ids}}}}
                           .dump();
  Files files;
  nlohmann::json paths = nlohmann::json::array();
  for (size_t i = 0; i < layers.size(); ++i) {
    files.emplace_back("l" + std::to_string(i) + "/layer.tar", layers[i]);
    paths.push_back("l" + std::to_string(i) + "/layer.tar");
  }
  std::string cfg_name = Digest::Of(config).hex() + ".json";
  files.emplace_back(cfg_name, config);
  files.emplace_back("manifest.json",
                     nlohmann::json::array({{{"Config", cfg_name},
                                             {"RepoTags", {tag}},
                                             {"Layers", paths}}})
                         .dump());
  return Tar(files);
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (overlay mounts)";
    auto t = ScopedTempDir::Make("/tmp", "shale-image-test-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
    auto s = ImageStore::Open(tmp_.path() + "/root");
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }
  void TearDown() override {
    if (store_) {
      for (const auto& name : ListDir(tmp_.path() + "/root/overlay2").value_or(std::vector<std::string>{}))
        (void)store_->driver().Unmount(name);
    }
    store_.reset();
  }
  Result<LoadResult> LoadBytes(const std::string& bytes) {
    std::string path = tmp_.path() + "/in-" + RandomHexId(8) + ".tar";
    TRY(WriteFileAtomic(path, bytes));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    UniqueFd owner(fd);
    auto lock = TRY(store_->Lock(FileLock::Mode::kExclusive));
    return store_->Load(fd, path);
  }
  // Everything under the store except tmp/, for before/after comparisons.
  std::vector<std::string> Snapshot() {
    std::vector<std::string> out;
    std::function<void(const std::string&)> walk = [&](const std::string& rel) {
      for (const auto& n : ListDir(tmp_.path() + "/root" + rel).value_or(std::vector<std::string>{})) {
        std::string r = rel + "/" + n;
        if (r == "/tmp") continue;
        out.push_back(r);
        std::string abs = tmp_.path() + "/root" + r;
        struct stat st;
        if (::lstat(abs.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) walk(r);
      }
    };
    walk("");
    return out;
  }

  ScopedTempDir tmp_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImageStoreTest, LoadComputesDockerChainIds) {
  std::string l1 = Tar({{"etc/one", "1\n"}}), l2 = Tar({{"etc/two", "2\n"}});
  auto res = LoadBytes(DockerArchive({l1, l2}, "two:layers"));
  ASSERT_TRUE(res) << res.error().message();
  ASSERT_EQ(res->tags, std::vector<std::string>{"two:layers"});
  auto img = store_->Resolve("docker.io/library/two:layers");
  ASSERT_TRUE(img) << img.error().message();
  Digest d1 = Digest::Of(l1), d2 = Digest::Of(l2);
  ASSERT_EQ(img->diff_ids, (std::vector<Digest>{d1, d2}));
  // chainID(L1) = diffID(L1); chainID(L2) = sha256(chainID(L1) + " " + diffID(L2)).
  EXPECT_EQ(img->chain_ids[0], d1);
  EXPECT_EQ(img->chain_ids[1], Digest::Of(d1.str() + " " + d2.str()));
  auto ids = store_->LayerIds(*img);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_EQ(img->top_layer_id, (*ids)[1]);
  auto merged = store_->MountImage(*img);
  ASSERT_TRUE(merged) << merged.error().message();
  EXPECT_EQ(*ReadFile(*merged + "/etc/one"), "1\n");
  EXPECT_EQ(*ReadFile(*merged + "/etc/two"), "2\n");
  ASSERT_TRUE(store_->UnmountImage(*img));
  // Loading it again reuses every layer.
  auto again = LoadBytes(DockerArchive({l1, l2}, "two:again"));
  ASSERT_TRUE(again);
  EXPECT_EQ(ListDir(tmp_.path() + "/root/image/overlay2/layerdb/sha256")->size(), 2u);
  EXPECT_EQ(ListDir(tmp_.path() + "/root/overlay2")->size(), 3u);  // l/ + 2 layers
}

// A command killed after it wrote an image config but before its txn committed: the next
// open removes that image (untagged, unused), and keeps what a committed txn wrote.
TEST_F(ImageStoreTest, RecoveryRemovesTheUntaggedImageOfAnUnfinishedTxnOnly) {
  std::string l1 = Tar({{"etc/one", "1\n"}});
  ASSERT_TRUE(LoadBytes(DockerArchive({l1}, "keep:1")));
  auto kept = store_->Resolve("keep:1");
  ASSERT_TRUE(kept);
  auto db = store::ImageDb::Open(tmp_.path() + "/root/image/overlay2/imagedb");
  ASSERT_TRUE(db);
  for (bool committed : {false, true}) {
    nlohmann::json cfg = kept->config;
    cfg["comment"] = committed ? "committed" : "interrupted";
    auto orphan = db->Put(cfg.dump());
    ASSERT_TRUE(orphan);
    std::string txn = tmp_.path() + "/root/tmp/txn-dead" + (committed ? "2" : "1");
    ASSERT_TRUE(MakeDirsAbs(txn, 0700));
    ASSERT_TRUE(WriteFileAtomic(txn + "/journal", "image " + orphan->str() + "\n" +
                                                      (committed ? "committed\n" : "")));
    store_.reset();
    auto s = ImageStore::Open(tmp_.path() + "/root");
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
    EXPECT_EQ(db->Has(*orphan), committed) << (committed ? "committed image removed"
                                                         : "interrupted image kept");
    EXPECT_FALSE(PathExists(txn));
    auto still = store_->Resolve("keep:1");
    ASSERT_TRUE(still);
    auto merged = store_->MountImage(*still);
    ASSERT_TRUE(merged) << merged.error().message();
    EXPECT_EQ(*ReadFile(*merged + "/etc/one"), "1\n");
    ASSERT_TRUE(store_->UnmountImage(*still));
  }
}

TEST_F(ImageStoreTest, CorruptArchiveIsRolledBackCompletely) {
  std::string base = Tar({{"base", "b"}});
  ASSERT_TRUE(LoadBytes(DockerArchive({base}, "base:1")));
  std::vector<std::string> before = Snapshot();
  std::string l1 = Tar({{"one", "1"}}), l2 = Tar({{"two", "2"}});
  auto res = LoadBytes(DockerArchive({base, l1, l2}, "bad:1",
                                     {Digest::Of(base), Digest::Of(l1), Digest::Of("lie")}));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), Errc::kCorrupt);
  EXPECT_NE(res.error().message().find("layer " + Digest::Of("lie").str() +
                                       ": content has digest " + Digest::Of(l2).str() +
                                       ", manifest says " + Digest::Of("lie").str()),
            std::string::npos)
      << res.error().message();
  EXPECT_EQ(Snapshot(), before);
  EXPECT_TRUE(ListDir(tmp_.path() + "/root/tmp")->empty());
  // A layer count that disagrees with the config is refused before anything is made.
  auto short_cfg = LoadBytes(DockerArchive({l1, l2}, "bad:2", {Digest::Of(l1)}));
  ASSERT_FALSE(short_cfg);
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(ImageStoreTest, CommitPacksOnlyTheUpperDir) {
  std::string l1 = Tar({{"etc/base", "b"}});
  ASSERT_TRUE(LoadBytes(DockerArchive({l1}, "base:1")));
  auto base = store_->Resolve("base:1");
  ASSERT_TRUE(base);
  auto lock = store_->Lock(FileLock::Mode::kExclusive);
  ASSERT_TRUE(lock);
  ASSERT_TRUE(store_->driver().Create("ctr1", base->top_layer_id, graph::LayerKind::kContainer));
  auto upper = store_->driver().OpenDiffDir("ctr1");
  ASSERT_TRUE(upper);
  ASSERT_TRUE(upper->WriteFileAtomic("hello", "world\n"));
  CommitOptions opts;
  opts.message = "my commit";
  opts.author = "me";
  opts.container_id = "ctr1";
  opts.container_config = {{"Cmd", {"/bin/sh", "-c", "echo hi"}}};
  opts.tag = "committed:1";
  auto img = store_->Commit(*base, "ctr1", opts);
  ASSERT_TRUE(img) << img.error().message();
  ASSERT_EQ(img->diff_ids.size(), 2u);
  EXPECT_EQ(img->diff_ids[0], base->diff_ids[0]);
  EXPECT_EQ(img->repo_tags, std::vector<std::string>{"committed:1"});
  EXPECT_EQ(img->config["config"]["Cmd"][2], "echo hi");
  EXPECT_EQ(img->config["container"], "ctr1");
  EXPECT_EQ(img->config["history"].back()["comment"], "my commit");
  EXPECT_EQ(img->config["history"].back()["created_by"], "/bin/sh -c echo hi");
  auto merged = store_->MountImage(*img);
  ASSERT_TRUE(merged) << merged.error().message();
  EXPECT_EQ(*ReadFile(*merged + "/hello"), "world\n");
  EXPECT_EQ(*ReadFile(*merged + "/etc/base"), "b");
  ASSERT_TRUE(store_->UnmountImage(*img));
  auto hist = store_->History(*img);
  ASSERT_TRUE(hist);
  EXPECT_EQ((*hist)[0].id, img->id.str());
  EXPECT_EQ((*hist)[0].comment, "my commit");
  // A container on the image keeps it from rmi without -f.
  ASSERT_TRUE(store_->AddContainerRef("ctr2", *img, "", "ctr2"));
  auto busy = store_->Remove("committed:1", false);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code(), Errc::kBusy);
  ASSERT_TRUE(store_->RemoveContainerRef("ctr2"));
  auto removed = store_->Remove("committed:1", false);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(removed->size(), 3u);  // Untagged, Deleted image, Deleted top layer
  ASSERT_TRUE(store_->Resolve("base:1"));
  ASSERT_TRUE(store_->driver().Remove("ctr1"));
}

}  // namespace
}  // namespace shale::image
