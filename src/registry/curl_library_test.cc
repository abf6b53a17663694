#include "registry/curl_library.h"

#include <gtest/gtest.h>

namespace shale::registry {
namespace {

TEST(CurlLibraryTest, OnceAndUsable) {
  auto a = LoadCurl();
  auto b = LoadCurl();
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  const CurlLibrary& c = **a;
  CURL* h = c.easy_init();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(c.easy_setopt(h, CURLOPT_URL, "http://127.0.0.1:1/"), CURLE_OK);
  curl_slist* l = c.slist_append(nullptr, "X-Test: 1");
  ASSERT_NE(l, nullptr);
  c.slist_free_all(l);
  EXPECT_STREQ(c.easy_strerror(CURLE_OK), "No error");
  c.easy_cleanup(h);
}

}  // namespace
}  // namespace shale::registry
