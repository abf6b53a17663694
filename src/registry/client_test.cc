// The client against a real registry (docker-registry), plain, with TLS + htpasswd.
#include "registry/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "registry/test_hostile_server.h"
#include "registry/test_registry.h"
#include "registry/test_token_server.h"
#include "util/fs.h"

namespace shale::registry {
namespace {

using testing::RegistryConfig;
using testing::TestRegistry;

ClientOptions NoAuthFiles(const std::string& certs_dir = "") {
  ClientOptions o;
  o.auth_files.own = "/nonexistent/shale-test/auth.json";
  o.auth_files.others.clear();
  o.certs_dirs.clear();
  if (!certs_dir.empty()) o.certs_dirs.push_back(certs_dir);
  o.backoff_ms = 10;
  return o;
}

// A blob in a temp file, for PutBlob.
struct TempBlob {
  ScopedTempDir dir;
  UniqueFd fd;
  std::string data;
  Digest digest;
  explicit TempBlob(std::string bytes) : data(std::move(bytes)) {
    dir = std::move(*ScopedTempDir::Make("/tmp", "shale-blob-"));
    std::string p = dir.path() + "/b";
    fd = UniqueFd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    (void)WriteAll(fd.get(), data, p);
    digest = Digest::Of(data);
  }
};

std::string Manifest(const Digest& cfg, int64_t cfg_size, const Digest& layer, int64_t size) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
         R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":)" +
         std::to_string(cfg_size) + R"(,"digest":")" + cfg.str() +
         R"("},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":)" +
         std::to_string(size) + R"(,"digest":")" + layer.str() + R"("}]})";
}

class PlainRegistry : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(reg_.Start({}), ""); }
  TestRegistry reg_;
};

TEST_F(PlainRegistry, LoopbackFallsBackToHttp) {
  auto c = Client::Connect(reg_.host(), NoAuthFiles());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ((*c)->base_url(), "http://" + reg_.host());
}

TEST_F(PlainRegistry, BlobUploadMonolithicAndChunkedHeadGetMount) {
  auto c = std::move(*Client::Connect(reg_.host(), NoAuthFiles()));
  TempBlob small("hello registry");
  std::string big_data(300000, 'x');
  for (size_t i = 0; i < big_data.size(); ++i) big_data[i] = static_cast<char>(i * 7 % 251);
  TempBlob big(big_data);

  auto h = c->HeadBlob("a/repo", small.digest);
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_FALSE(*h);
  ASSERT_TRUE(c->PutBlob("a/repo", small.digest, small.fd.get(), small.data.size()));
  ASSERT_TRUE(c->PutBlob("a/repo", big.digest, big.fd.get(), big.data.size(), 65536));
  EXPECT_EQ(c->stats().blob_uploads, 2);
  h = c->HeadBlob("a/repo", big.digest);
  ASSERT_TRUE(h && *h);
  EXPECT_EQ(**h, static_cast<int64_t>(big.data.size()));

  std::string got;
  int64_t last = 0;
  auto r = c->GetBlob("a/repo", big.digest, big.data.size(),
                      [&](std::string_view d) -> Result<void> {
                        got.append(d);
                        return Ok();
                      },
                      [&](int64_t n) { last = n; });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(got, big.data);
  EXPECT_EQ(last, static_cast<int64_t>(big.data.size()));

  // Resume: the caller holds the first 1000 bytes and their running hash.
  Sha256 prefix;
  prefix.Update(big.data.data(), 1000);
  std::string rest;
  r = c->GetBlob("a/repo", big.digest, big.data.size(),
                 [&](std::string_view d) -> Result<void> {
                   rest.append(d);
                   return Ok();
                 },
                 nullptr, 1000, &prefix);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(rest, big.data.substr(1000));

  // Cross-repository mount: no bytes sent.
  auto m = c->MountBlob("b/other", big.digest, "a/repo");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(*m);
  EXPECT_TRUE(*c->HeadBlob("b/other", big.digest));
  auto none = c->MountBlob("b/other", Digest::Of("never uploaded"), "a/repo");
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_FALSE(*none);
}

TEST_F(PlainRegistry, ManifestPutGetByTagAndDigest) {
  auto c = std::move(*Client::Connect(reg_.host(), NoAuthFiles()));
  TempBlob cfg(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})");
  TempBlob layer("layer bytes");
  ASSERT_TRUE(c->PutBlob("m/x", cfg.digest, cfg.fd.get(), cfg.data.size()));
  ASSERT_TRUE(c->PutBlob("m/x", layer.digest, layer.fd.get(), layer.data.size()));
  std::string man = Manifest(cfg.digest, cfg.data.size(), layer.digest, layer.data.size());
  auto d = c->PutManifest("m/x", "v1", std::string(oci::kMediaTypeDockerManifest), man);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(*d, Digest::Of(man));
  auto got = c->GetManifest("m/x", "v1");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->bytes, man);
  EXPECT_EQ(got->media_type, oci::kMediaTypeDockerManifest);
  got = c->GetManifest("m/x", d->str());
  ASSERT_TRUE(got) << got.error().message();
  auto head = c->HeadManifest("m/x", "v1");
  ASSERT_TRUE(head && *head);
  EXPECT_EQ((*head)->digest, *d);
  EXPECT_EQ(*c->GetBlobBytes("m/x", cfg.digest), cfg.data);

  auto missing = c->GetManifest("m/x", "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_NE(missing.error().message().find("manifest unknown"), std::string::npos)
      << missing.error().message();
  EXPECT_NE(missing.error().message().find(reg_.host()), std::string::npos);
}

TEST_F(PlainRegistry, CorruptBlobInStorageIsRefusedNamingTheDigest) {
  auto c = std::move(*Client::Connect(reg_.host(), NoAuthFiles()));
  TempBlob b(std::string(10000, 'q'));
  ASSERT_TRUE(c->PutBlob("c/x", b.digest, b.fd.get(), b.data.size()));
  std::string path = reg_.BlobDataPath(b.digest.hex());
  ASSERT_TRUE(PathExists(path)) << path;
  ASSERT_TRUE(WriteFileAtomic(path, std::string(10000, 'Q')));
  auto r = c->GetBlob("c/x", b.digest, b.data.size(),
                      [](std::string_view) -> Result<void> { return Ok(); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCorrupt);
  EXPECT_NE(r.error().message().find(b.digest.str()), std::string::npos) << r.error().message();
}

TEST(RegistryErrors, ConnectionRefusedIsOneLineNamingTheRegistry) {
  TestRegistry reg;
  ASSERT_EQ(reg.Start({}), "");
  std::string host = reg.host();
  reg.Stop();
  auto c = Client::Connect(host, NoAuthFiles());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kNetwork);
  EXPECT_NE(c.error().message().find("registry " + host + ": cannot connect"), std::string::npos)
      << c.error().message();
  EXPECT_EQ(c.error().message().find('\n'), std::string::npos);
}

TEST(RegistryErrors, HtmlServerIsNotARegistry) {
  auto t = ScopedTempDir::Make("/tmp", "shale-html-");
  ASSERT_TRUE(t);
  ASSERT_TRUE(MakeDirsAbs(t->path() + "/v2"));
  ASSERT_TRUE(WriteFileAtomic(t->path() + "/v2/index.html", "<html><body>hi</body></html>"));
  // python's http.server on a fixed free port found by binding port 0 first.
  int port = 0;
  {
    TestRegistry probe;  // only to borrow its free-port logic through a started server
    ASSERT_EQ(probe.Start({}), "");
    port = probe.port();
  }
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", "-d",
           t->path().c_str(), std::to_string(port).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string host = "127.0.0.1:" + std::to_string(port);
  Result<std::unique_ptr<Client>> c = Error(Errc::kInternal, "not tried");
  for (int i = 0; i < 100; ++i) {
    c = Client::Connect(host, NoAuthFiles());
    if (c || c.error().message().find("cannot connect") == std::string::npos) break;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(c.error().message().find("not the registry API"), std::string::npos)
      << c.error().message();
}

class SecureRegistry : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(reg_.Start({true, "alice", "right-pw"}), ""); }
  TestRegistry reg_;
};

TEST_F(SecureRegistry, UnknownCaIsRefusedNotDowngraded) {
  auto c = Client::Connect(reg_.host(), NoAuthFiles());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::kNetwork);
  EXPECT_NE(c.error().message().find("certificate not trusted"), std::string::npos)
      << c.error().message();
}

TEST_F(SecureRegistry, CaFromCertsDirAndBasicAuth) {
  auto anon = Client::Connect(reg_.host(), NoAuthFiles(reg_.certs_dir()));
  ASSERT_TRUE(anon) << anon.error().message();
  EXPECT_EQ((*anon)->base_url(), "https://" + reg_.host());
  auto h = (*anon)->HeadBlob("s/x", Digest::Of("x"));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code(), Errc::kUnauthorized);

  ClientOptions wrong = NoAuthFiles(reg_.certs_dir());
  wrong.credentials = Credentials{"alice", "wrong-pw"};
  auto w = Client::Connect(reg_.host(), wrong);
  ASSERT_TRUE(w) << w.error().message();
  auto login = (*w)->CheckLogin();
  ASSERT_FALSE(login);
  EXPECT_EQ(login.error().code(), Errc::kUnauthorized);
  EXPECT_EQ(login.error().message(), "registry " + reg_.host() + ": wrong username or password");

  ClientOptions right = NoAuthFiles(reg_.certs_dir());
  right.credentials = Credentials{"alice", "right-pw"};
  auto c = std::move(*Client::Connect(reg_.host(), right));
  ASSERT_TRUE(c->CheckLogin());
  TempBlob b("secret layer");
  ASSERT_TRUE(c->PutBlob("s/x", b.digest, b.fd.get(), b.data.size()));
  EXPECT_EQ(*c->GetBlobBytes("s/x", b.digest), b.data);
}

TEST_F(SecureRegistry, TlsVerifyFalseSkipsTheCaCheck) {
  ClientOptions o = NoAuthFiles();
  o.tls_verify = false;
  o.credentials = Credentials{"alice", "right-pw"};
  auto c = Client::Connect(reg_.host(), o);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE((*c)->CheckLogin());
}

class TokenRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Make("/tmp", "shale-token-test-");
    ASSERT_TRUE(t);
    tmp_ = std::move(*t);
    ASSERT_EQ(tokens_.Start(tmp_.path(), "bob", "token-pw"), "");
    RegistryConfig cfg;
    cfg.token_realm = tokens_.realm();
    cfg.token_cert = tokens_.cert_path();
    ASSERT_EQ(reg_.Start(cfg), "");
  }
  ScopedTempDir tmp_;
  testing::TokenServer tokens_;
  TestRegistry reg_;
};

TEST_F(TokenRegistry, BearerTokensPerScopeWithBasicToTheTokenServer) {
  ClientOptions o = NoAuthFiles();
  o.credentials = Credentials{"bob", "token-pw"};
  auto c = std::move(*Client::Connect(reg_.host(), o));
  ASSERT_TRUE(c->CheckLogin());
  TempBlob cfg(R"({"rootfs":{"type":"layers","diff_ids":[]}})");
  TempBlob layer(std::string(5000, 'L'));
  ASSERT_TRUE(c->PutBlob("t/one", layer.digest, layer.fd.get(), layer.data.size()));
  ASSERT_TRUE(c->PutBlob("t/one", cfg.digest, cfg.fd.get(), cfg.data.size()));
  std::string man = Manifest(cfg.digest, cfg.data.size(), layer.digest, layer.data.size());
  ASSERT_TRUE(c->PutManifest("t/one", "v1", std::string(oci::kMediaTypeDockerManifest), man));
  int before = tokens_.requests();
  // Same scope again: the cached token, no new token request.
  ASSERT_TRUE(c->PutBlob("t/one", layer.digest, layer.fd.get(), layer.data.size()));
  EXPECT_EQ(tokens_.requests(), before);
  // A mount asks one token for both repositories.
  auto m = c->MountBlob("t/two", layer.digest, "t/one");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(*m);
  auto got = c->GetManifest("t/one", "v1");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->bytes, man);

  // Anonymous: the token server refuses, one line naming the registry.
  auto anon = Client::Connect(reg_.host(), NoAuthFiles());
  ASSERT_TRUE(anon) << anon.error().message();
  auto r = (*anon)->GetManifest("t/one", "v1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kUnauthorized);
  EXPECT_NE(r.error().message().find("registry " + reg_.host()), std::string::npos);

  ClientOptions wrong = NoAuthFiles();
  wrong.credentials = Credentials{"bob", "nope"};
  auto w = Client::Connect(reg_.host(), wrong);
  ASSERT_TRUE(w);
  auto login = (*w)->CheckLogin();
  ASSERT_FALSE(login);
  EXPECT_EQ(login.error().code(), Errc::kUnauthorized);
  EXPECT_NE(login.error().message().find("wrong username or password"), std::string::npos)
      << login.error().message();
}

TEST(RegistryErrors, TokenServerThatDoesNotAnswer) {
  // A socket that accepts and never replies.
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 4), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  UniqueFd owner(s);
  auto t = ScopedTempDir::Make("/tmp", "shale-token-test-");
  ASSERT_TRUE(t);
  testing::TokenServer certs;  // only for a certificate the registry accepts
  ASSERT_EQ(certs.Start(t->path(), "x", "y"), "");
  TestRegistry reg;
  RegistryConfig cfg;
  cfg.token_realm = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/token";
  cfg.token_cert = certs.cert_path();
  ASSERT_EQ(reg.Start(cfg), "");
  ClientOptions o = NoAuthFiles();
  o.stall_timeout_s = 1;
  o.retries = 0;
  auto c = Client::Connect(reg.host(), o);
  ASSERT_TRUE(c) << c.error().message();
  auto r = (*c)->HeadBlob("x/y", Digest::Of("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kNetwork);
  EXPECT_NE(r.error().message().find("did not answer"), std::string::npos) << r.error().message();
}

TEST(RegistryErrors, HostileAnswersAreRefusedWithOneLine) {
  int port = 0;
  {
    TestRegistry probe;  // a free port
    ASSERT_EQ(probe.Start({}), "");
    port = probe.port();
  }
  testing::HostileServer srv;
  ASSERT_EQ(srv.Start(port), "");
  auto c = std::move(*Client::Connect(srv.host(), NoAuthFiles()));
  struct Case {
    const char* tag;
    Errc code;
    const char* says;
  } cases[] = {
      {"schema1", Errc::kUnsupported, "schema 1"},
      {"weird", Errc::kUnsupported, "unsupported media type \"application/vnd.example.thing+json\""},
      {"huge", Errc::kInvalidArgument, "larger than the 4 MiB limit"},
  };
  for (const auto& k : cases) {
    auto r = c->GetManifest("x/y", k.tag);
    ASSERT_FALSE(r) << k.tag;
    EXPECT_EQ(r.error().code(), k.code) << k.tag << ": " << r.error().message();
    EXPECT_NE(r.error().message().find(k.says), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("registry " + srv.host()), std::string::npos);
  }
  auto loop = c->GetBlob("x/y", Digest::Of("x"), -1, [](std::string_view) -> Result<void> {
    return Ok();
  });
  ASSERT_FALSE(loop);
  EXPECT_NE(loop.error().message().find("redirect loop"), std::string::npos)
      << loop.error().message();
}

TEST(IsLoopback, Forms) {
  EXPECT_TRUE(IsLoopback("localhost:5000"));
  EXPECT_TRUE(IsLoopback("127.0.0.1"));
  EXPECT_TRUE(IsLoopback("127.1.2.3:80"));
  EXPECT_TRUE(IsLoopback("[::1]:5000"));
  EXPECT_FALSE(IsLoopback("128.0.0.1:5000"));
  EXPECT_FALSE(IsLoopback("registry.example:5000"));
  EXPECT_FALSE(IsLoopback("localhost.example.com"));
}

}  // namespace
}  // namespace shale::registry
