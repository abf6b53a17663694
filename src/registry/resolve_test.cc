#include "registry/resolve.h"

#include <gtest/gtest.h>

namespace shale::registry {
namespace {

oci::Descriptor D(const char* os, const char* arch, const char* variant, char tag) {
  oci::Descriptor d;
  d.digest = Digest::FromHex(std::string(64, tag));
  d.platform.os = os;
  d.platform.architecture = arch;
  d.platform.variant = variant;
  return d;
}

TEST(ParsePlatform, Forms) {
  auto p = ParsePlatform("linux/arm64/v8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->os, "linux");
  EXPECT_EQ(p->architecture, "arm64");
  EXPECT_EQ(p->variant, "v8");
  EXPECT_EQ(ParsePlatform("linux/x86_64")->architecture, "amd64");
  for (const char* bad : {"", "linux", "linux/", "/amd64", "a/b/c/d", "linux/arm/"})
    EXPECT_FALSE(ParsePlatform(bad)) << bad;
}

TEST(SelectManifest, PicksByPlatform) {
  oci::Index idx;
  idx.manifests = {D("linux", "amd64", "", 'a'), D("linux", "arm", "v6", 'b'),
                   D("linux", "arm", "v7", 'c'), D("linux", "arm64", "v8", 'd'),
                   D("windows", "amd64", "", 'e'), D("unknown", "unknown", "", 'f')};
  struct Case {
    const char* want;
    char got;  // 0 = none
  } cases[] = {{"linux/amd64", 'a'},   {"linux/arm/v7", 'c'}, {"linux/arm/v6", 'b'},
               {"linux/arm64", 'd'},   {"linux/arm64/v8", 'd'}, {"windows/amd64", 'e'},
               {"linux/s390x", 0},     {"linux/arm/v5", 0}};
  for (const auto& c : cases) {
    auto got = SelectManifest(idx, *ParsePlatform(c.want));
    if (c.got == 0) {
      EXPECT_FALSE(got) << c.want;
    } else {
      ASSERT_TRUE(got) << c.want;
      EXPECT_EQ(got->digest.hex()[0], c.got) << c.want;
    }
  }
  // An armv7 host runs v6 when there is no v7 image.
  oci::Index v6only;
  v6only.manifests = {D("linux", "arm", "v6", 'b')};
  ASSERT_TRUE(SelectManifest(v6only, *ParsePlatform("linux/arm/v7")));
  EXPECT_FALSE(SelectManifest(v6only, *ParsePlatform("linux/arm/v5")));
}

TEST(SelectManifest, HostPlatformIsLinux) {
  EXPECT_EQ(HostPlatform().os, "linux");
  EXPECT_FALSE(HostPlatform().architecture.empty());
}

}  // namespace
}  // namespace shale::registry
