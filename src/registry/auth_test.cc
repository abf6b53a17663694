#include "registry/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "util/fs.h"

namespace shale::registry {
namespace {

TEST(ParseChallenges, BearerAsDockerHubSendsIt) {
  auto cs = ParseChallenges(
      "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
      "scope=\"repository:library/busybox:pull\"");
  ASSERT_TRUE(cs) << cs.error().message();
  ASSERT_EQ(cs->size(), 1u);
  EXPECT_EQ((*cs)[0].scheme, "bearer");
  EXPECT_EQ((*cs)[0].Param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*cs)[0].Param("service"), "registry.docker.io");
  EXPECT_EQ((*cs)[0].Param("scope"), "repository:library/busybox:pull");
}

TEST(ParseChallenges, TableOfForms) {
  struct Case {
    const char* header;
    size_t count;
    const char* scheme0;
    const char* realm0;
  } cases[] = {
      {"Basic realm=\"Registry Realm\"", 1, "basic", "Registry Realm"},
      {"basic REALM=plain", 1, "basic", "plain"},
      {"Basic", 1, "basic", ""},
      {"Bearer realm=\"a,b\", service=x", 1, "bearer", "a,b"},
      {"Bearer realm=\"q\\\"uote\"", 1, "bearer", "q\"uote"},
      {"Basic realm=\"r\", Bearer realm=\"https://t/token\",service=\"s\"", 2, "basic", "r"},
  };
  for (const auto& c : cases) {
    auto cs = ParseChallenges(c.header);
    ASSERT_TRUE(cs) << c.header << ": " << cs.error().message();
    ASSERT_EQ(cs->size(), c.count) << c.header;
    EXPECT_EQ((*cs)[0].scheme, c.scheme0) << c.header;
    EXPECT_EQ((*cs)[0].Param("realm"), c.realm0) << c.header;
  }
  auto two = ParseChallenges("Basic realm=\"r\", Bearer realm=\"https://t/token\",service=\"s\"");
  EXPECT_EQ((*two)[1].scheme, "bearer");
  EXPECT_EQ((*two)[1].Param("service"), "s");
}

TEST(ParseChallenges, RejectsMalformed) {
  for (const char* bad : {"", "   ", "Bearer realm=\"unterminated", "=x"})
    EXPECT_FALSE(ParseChallenges(bad)) << bad;
}

TEST(Base64, RoundTripsAndRejects) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "user:pa:ss", std::string("\0\xff", 2)}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(Base64Decode("abc"));
  EXPECT_FALSE(Base64Decode("ab!="));
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "shale-auth-test-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
    files_.own = tmp_.path() + "/cfg/shale/auth.json";
    files_.others = {tmp_.path() + "/podman-auth.json", tmp_.path() + "/docker/config.json"};
  }
  ScopedTempDir tmp_;
  AuthFiles files_;
};

TEST_F(CredentialsTest, StoreWritesDockerFormat0600AndLogoutRemoves) {
  ASSERT_TRUE(StoreCredentials(files_, "127.0.0.1:5000", {"alice", "s3:cret"}));
  struct stat st;
  ASSERT_EQ(stat(files_.own.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto bytes = ReadFile(files_.own);
  ASSERT_TRUE(bytes);
  auto j = nlohmann::json::parse(*bytes);
  EXPECT_EQ(j["auths"]["127.0.0.1:5000"]["auth"], Base64Encode("alice:s3:cret"));
  auto c = LookupCredentials(files_, "127.0.0.1:5000");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->username, "alice");
  EXPECT_EQ((*c)->password, "s3:cret");
  ASSERT_TRUE(RemoveCredentials(files_, "127.0.0.1:5000"));
  c = LookupCredentials(files_, "127.0.0.1:5000");
  ASSERT_TRUE(c);
  EXPECT_FALSE(*c);
  auto again = RemoveCredentials(files_, "127.0.0.1:5000");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kNotFound);
}

TEST_F(CredentialsTest, ReadsPodmanAndDockerFilesOwnFirst) {
  ASSERT_TRUE(MakeDirsAbs(tmp_.path() + "/docker"));
  ASSERT_TRUE(WriteFileAtomic(files_.others[1],
                              R"({"auths":{"https://index.docker.io/v1/":{"auth":")" +
                                  Base64Encode("hub:pw") + R"("},"r.example:5000":{"auth":")" +
                                  Base64Encode("dock:er") + "\"}}}"));
  ASSERT_TRUE(WriteFileAtomic(files_.others[0], R"({"auths":{"r.example:5000":{"auth":")" +
                                                    Base64Encode("pod:man") + "\"}}}"));
  auto c = LookupCredentials(files_, "r.example:5000");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->username, "pod");
  c = LookupCredentials(files_, "docker.io");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->username, "hub");
  ASSERT_TRUE(StoreCredentials(files_, "r.example:5000", {"own", "x"}));
  c = LookupCredentials(files_, "r.example:5000");
  EXPECT_EQ((*c)->username, "own");
}

TEST_F(CredentialsTest, CorruptFileIsNamed) {
  ASSERT_TRUE(WriteFileAtomic(files_.others[0], "{not json"));
  auto c = LookupCredentials(files_, "x:1");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kCorrupt);
  EXPECT_NE(c.error().message().find(files_.others[0]), std::string::npos);
}

}  // namespace
}  // namespace shale::registry
