#include "build/cache.h"

#include <gtest/gtest.h>

#include "util/fs.h"

namespace shale::build {
namespace {

TEST(CacheTest, KeyChangesWithEveryPart) {
  CacheKeyParts base{"sha256:" + std::string(64, 'a'), "/bin/sh -c true", {{"Env", {"A=1"}}},
                     {"A=1"}, ""};
  std::string k = CacheKey(base);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(CacheKey(base), k);
  auto differs = [&](auto change) {
    CacheKeyParts p = base;
    change(p);
    return CacheKey(p) != k;
  };
  EXPECT_TRUE(differs([](CacheKeyParts& p) { p.parent_id = ""; }));
  EXPECT_TRUE(differs([](CacheKeyParts& p) { p.created_by = "|1 A=2 /bin/sh -c true"; }));
  EXPECT_TRUE(differs([](CacheKeyParts& p) { p.config["User"] = "bob"; }));
  EXPECT_TRUE(differs([](CacheKeyParts& p) { p.run_env.push_back("HTTP_PROXY=x"); }));
  EXPECT_TRUE(differs([](CacheKeyParts& p) { p.sources = "ab"; }));
  // Length prefixes: moving text between parts changes the key.
  CacheKeyParts a{"", "ab", nullptr, {}, "c"}, b{"", "a", nullptr, {}, "bc"};
  EXPECT_NE(CacheKey(a), CacheKey(b));
}

TEST(CacheTest, IndexStoresImageIds) {
  auto t = ScopedTempDir::Make("/tmp", "cachetest-");
  ASSERT_TRUE(t);
  BuildCache c(t->path() + "/buildcache");
  EXPECT_FALSE(c.Get("k"));
  std::string id = "sha256:" + std::string(64, 'b');
  ASSERT_TRUE(c.Put("k", id));
  EXPECT_EQ(c.Get("k").value_or(""), id);
  ASSERT_TRUE(WriteFileAtomic(t->path() + "/buildcache/bad", "garbage"));
  EXPECT_FALSE(c.Get("bad"));
}

}  // namespace
}  // namespace shale::build
