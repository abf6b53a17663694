#include "container/seccomp_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>

#include "util/fs.h"

namespace shale::container {
namespace {

bool Same(const runtime::SeccompProgram& a, const runtime::SeccompProgram& b) {
  return a.flags == b.flags && a.listener == b.listener && a.insns.size() == b.insns.size() &&
         memcmp(a.insns.data(), b.insns.data(), a.insns.size() * sizeof(a.insns[0])) == 0;
}

// Through the cache the program is the one CompileSeccomp makes, one file per distinct
// filter; a file that does not read back as a program is compiled and written again.
TEST(SeccompCacheDirTest, ReturnsTheCompiledProgramAndRepairsABadFile) {
  char tmpl[] = "/tmp/shale-seccomp-cache-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = std::string(tmpl) + "/seccomp";
  SeccompCacheDir cache(dir);
  oci::Seccomp profile = oci::DefaultSeccomp(oci::DefaultCapabilities());
  auto direct = runtime::CompileSeccomp(profile);
  ASSERT_TRUE(direct) << direct.error().message();
  auto miss = runtime::CompileSeccompCached(profile, &cache);
  ASSERT_TRUE(miss) << miss.error().message();
  EXPECT_TRUE(Same(*direct, *miss));
  auto files = ListDir(dir);
  ASSERT_TRUE(files);
  ASSERT_EQ(files->size(), 1u);
  std::string file = dir + "/" + (*files)[0];
  auto hit = cache.Get(runtime::SeccompCacheKey(profile));
  ASSERT_TRUE(hit);
  EXPECT_TRUE(Same(*direct, *hit));

  oci::Seccomp other;
  other.syscalls.push_back({{"mkdir"}, "SCMP_ACT_ERRNO", 1, {}});
  auto other_prog = runtime::CompileSeccompCached(other, &cache);
  ASSERT_TRUE(other_prog);
  EXPECT_FALSE(Same(*direct, *other_prog));
  EXPECT_EQ(ListDir(dir)->size(), 2u);

  // Truncated: a miss, compiled again and rewritten whole.
  auto whole = ReadFile(file);
  ASSERT_TRUE(whole);
  ASSERT_TRUE(WriteFileReplace(file, whole->substr(0, whole->size() - 3)));
  EXPECT_FALSE(cache.Get(runtime::SeccompCacheKey(profile)));
  auto repaired = runtime::CompileSeccompCached(profile, &cache);
  ASSERT_TRUE(repaired);
  EXPECT_TRUE(Same(*direct, *repaired));
  EXPECT_EQ(ReadFile(file).value_or(""), *whole);

  // Errors are the compiler's, with or without a cache.
  oci::Seccomp bad;
  bad.default_action = "SCMP_ACT_NO_SUCH";
  EXPECT_FALSE(runtime::CompileSeccompCached(bad, &cache));
  ASSERT_TRUE(RemoveTreeAbs(tmpl));
}

}  // namespace
}  // namespace shale::container
