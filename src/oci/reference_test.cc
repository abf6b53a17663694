#include "oci/reference.h"

#include <gtest/gtest.h>

#include "oci/image_spec.h"

namespace shale::oci {
namespace {

TEST(ReferenceTest, NormalizesLikeDocker) {
  struct Case {
    const char* in;
    const char* familiar;
    const char* full;
  } cases[] = {
      {"busybox", "busybox:latest", "docker.io/library/busybox:latest"},
      {"busybox:1.36", "busybox:1.36", "docker.io/library/busybox:1.36"},
      {"library/busybox", "busybox:latest", "docker.io/library/busybox:latest"},
      {"docker.io/library/busybox:1", "busybox:1", "docker.io/library/busybox:1"},
      {"index.docker.io/library/busybox", "busybox:latest", "docker.io/library/busybox:latest"},
      {"docker.io/foo/bar", "foo/bar:latest", "docker.io/foo/bar:latest"},
      {"localhost/frompodman:2", "localhost/frompodman:2", "localhost/frompodman:2"},
      {"localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000/a/b:v1"},
      {"quay.io/podman/stable", "quay.io/podman/stable:latest", "quay.io/podman/stable:latest"},
      {"skopeo/busybox:copied", "skopeo/busybox:copied", "docker.io/skopeo/busybox:copied"},
      {"a-b_c__d/f---g", "a-b_c__d/f---g:latest", "docker.io/a-b_c__d/f---g:latest"},
  };
  for (const auto& c : cases) {
    auto r = ParseReference(c.in);
    ASSERT_TRUE(r) << c.in << ": " << r.error().message();
    EXPECT_EQ(r->FamiliarString(), c.familiar) << c.in;
    EXPECT_EQ(r->FullString(), c.full) << c.in;
  }
}

TEST(ReferenceTest, Digest) {
  std::string hex(64, 'a');
  auto r = ParseReference("busybox@sha256:" + hex);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, "sha256:" + hex);
  EXPECT_EQ(r->FamiliarString(), "busybox@sha256:" + hex);
}

TEST(ReferenceTest, RejectsMalformed) {
  for (const char* bad : {"", "Busybox", "busybox:", "bus//box", "busybox:bad tag", ":tag",
                          "busybox@sha256:abc", "-busybox", "busybox:-x", "a/B/c"}) {
    auto r = ParseReference(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code(), Errc::kInvalidArgument);
    }
  }
}

// The grammar's corners, matched by hand since the regexes went.
TEST(ReferenceTest, ComponentTagAndDomainGrammar) {
  for (const char* ok : {"a__b", "a_b", "a.b", "a---b", "a-b.c_d", "x/y/z", "localhost/a",
                         "localhost:5000/a", "127.0.0.1:5000/a/b:t", "my-reg.example:443/a",
                         "a:_t", "a:T.-_9", "Reg.Example/a"}) {
    EXPECT_TRUE(ParseReference(ok)) << ok;
  }
  std::string long_tag = "a:" + std::string(128, 't');
  EXPECT_TRUE(ParseReference(long_tag));
  for (const char* bad : {"a___b", "a._b", "a.", "_a", "a-", "a..b", "-reg.example/a",
                          "reg-.example/a", "reg..example/a", "reg.example:/a",
                          "reg.example:5x/a", "a:.t"}) {
    EXPECT_FALSE(ParseReference(bad)) << bad;
  }
  EXPECT_FALSE(ParseReference("a:" + std::string(129, 't')));
}

TEST(ReferenceTest, IdPrefixes) {
  EXPECT_TRUE(LooksLikeIdPrefix("3f1c"));
  EXPECT_TRUE(LooksLikeIdPrefix("sha256:3f1c"));
  EXPECT_TRUE(LooksLikeIdPrefix(std::string(64, 'f')));
  EXPECT_FALSE(LooksLikeIdPrefix(std::string(65, 'f')));
  EXPECT_FALSE(LooksLikeIdPrefix("busybox"));
  EXPECT_FALSE(LooksLikeIdPrefix(""));
}

TEST(ImageSpecTest, ManifestRoundTrip) {
  Manifest m;
  m.media_type = std::string(kMediaTypeOciManifest);
  m.config = {std::string(kMediaTypeOciConfig), Digest::Of("cfg"), 3, {}, {}};
  m.layers.push_back({std::string(kMediaTypeOciLayerGzip), Digest::Of("l1"), 2, {}, {}});
  auto back = ParseManifest(ManifestToJson(m), "test");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->config.digest, m.config.digest);
  ASSERT_EQ(back->layers.size(), 1u);
  EXPECT_EQ(back->layers[0].media_type, kMediaTypeOciLayerGzip);
  EXPECT_FALSE(ParseManifest("{", "x"));
  EXPECT_FALSE(ParseManifest(R"({"config":{"digest":"sha256:zz"},"layers":[]})", "x"));
}

TEST(ImageSpecTest, LayerMediaTypes) {
  EXPECT_EQ(OciLayerMediaType(kMediaTypeDockerLayerGzip), kMediaTypeOciLayerGzip);
  EXPECT_EQ(OciLayerMediaType(kMediaTypeDockerLayer), kMediaTypeOciLayer);
  EXPECT_EQ(OciLayerMediaType(kMediaTypeOciConfig), "");
}

}  // namespace
}  // namespace shale::oci
