#include "util/strings.h"

#include <gtest/gtest.h>

namespace shale {
namespace {

TEST(ParseUint, RangeAndSyntaxWithoutThrowingOrTruncating) {
  EXPECT_EQ(*ParseUint("0", 10, "n"), 0u);
  EXPECT_EQ(*ParseUint("2147483647", kMaxId, "uid"), 2147483647u);
  for (const char* bad : {"2147483648", "4294967295", "4294967296", "99999999999999999999",
                          "999999999999999999999999999999"}) {
    auto r = ParseUint(bad, kMaxId, "user id");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("out of range"), std::string::npos) << bad;
  }
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "abc"}) {
    auto r = ParseUint(bad, 100, "n");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("not a number"), std::string::npos) << bad;
  }
}

TEST(ParseInt, NegativeBoundsAndOverflow) {
  EXPECT_EQ(*ParseInt("-1", -1, 100, "n"), -1);
  EXPECT_EQ(*ParseInt("100", -1, 100, "n"), 100);
  EXPECT_FALSE(ParseInt("-2", -1, 100, "n"));
  EXPECT_FALSE(ParseInt("101", -1, 100, "n"));
  EXPECT_FALSE(ParseInt("99999999999999999999", -1, INT64_MAX, "n"));
  EXPECT_EQ(*ParseInt("-9223372036854775808", INT64_MIN, INT64_MAX, "n"), INT64_MIN);
  EXPECT_FALSE(ParseInt("-5", 0, 10, "n"));
}

TEST(ParseSize, ExactAndRefusesOverflow) {
  EXPECT_EQ(*ParseSize("32m"), 32 << 20);
  EXPECT_EQ(*ParseSize("1.5g"), (int64_t{3} << 30) / 2);
  EXPECT_EQ(*ParseSize("100"), 100);
  EXPECT_EQ(*ParseSize("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"99999999999999999999g", "9223372036854775808", "8388608t",
                          "99999999999999999999", "x", "12q"}) {
    EXPECT_FALSE(ParseSize(bad)) << bad;
  }
  auto big = ParseSize("99999999999999999999g");
  EXPECT_NE(big.error().message().find("too large"), std::string::npos);
}

}  // namespace
}  // namespace shale
