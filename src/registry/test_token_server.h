// Test fixture: a small Docker token server (the `auth: token:` side of distribution), so
// the client's Bearer flow runs against the real registry. It listens on 127.0.0.1, checks
// Basic credentials, and answers GET /token?service=…&scope=… with {"token","access_token"}:
// a JWT signed RS256 with a key whose self-signed certificate the registry trusts
// (rootcertbundle) and which rides in the JWT's x5c header. Granted actions = requested.
#pragma once

#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "registry/auth.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::registry::testing {

inline std::string Base64Url(std::string_view in) {
  std::string s = Base64Encode(in);
  for (char& c : s) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

inline std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::strtol(std::string(s.substr(i + 1, 2)).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

class TokenServer {
 public:
  // Writes key.pem/cert.pem into dir (openssl CLI) and starts listening. "" on success.
  std::string Start(const std::string& dir, std::string user, std::string password) {
    user_ = std::move(user);
    password_ = std::move(password);
    cert_path_ = dir + "/token-cert.pem";
    std::string key_path = dir + "/token-key.pem";
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout " + key_path +
                      " -out " + cert_path_ + " -subj /CN=shale-token >/dev/null 2>&1";
    if (system(cmd.c_str()) != 0) return "openssl req failed";
    FILE* kf = fopen(key_path.c_str(), "r");
    if (!kf) return "open key";
    key_ = PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr);
    fclose(kf);
    FILE* cf = fopen(cert_path_.c_str(), "r");
    if (!cf) return "open cert";
    X509* x = PEM_read_X509(cf, nullptr, nullptr, nullptr);
    fclose(cf);
    if (!key_ || !x) return "read key/cert";
    unsigned char* der = nullptr;
    int n = i2d_X509(x, &der);
    cert_der_b64_ = Base64Encode(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
    OPENSSL_free(der);
    X509_free(x);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return "bind";
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
    return "";
  }
  ~TokenServer() {
    stop_ = true;
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
    if (key_) EVP_PKEY_free(key_);
  }
  std::string realm() const { return "http://127.0.0.1:" + std::to_string(port_) + "/token"; }
  const std::string& cert_path() const { return cert_path_; }
  int requests() const { return requests_; }
  int refused() const { return refused_; }
  static constexpr const char* kIssuer = "shale-test-issuer";
  static constexpr const char* kService = "shale-test-registry";

 private:
  void Loop() {
    while (!stop_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;
      Serve(c);
      close(c);
    }
  }
  void Serve(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    std::string line = req.substr(0, req.find("\r\n"));
    std::string target = line.substr(line.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    std::string auth;
    for (const auto& h : Split(req, '\n')) {
      std::string lower = h;
      for (char& ch : lower) ch = static_cast<char>(tolower(ch));
      if (StartsWith(lower, "authorization: basic "))
        auth = std::string(Trim(h.substr(std::string("authorization: basic ").size())));
    }
    auto plain = Base64Decode(auth);
    if (!plain || *plain != user_ + ":" + password_) {
      ++refused_;
      Reply(c, 401, R"({"details":"incorrect username or password"})");
      return;
    }
    nlohmann::json access = nlohmann::json::array();
    size_t q = target.find('?');
    if (q != std::string::npos)
      for (const auto& kv : Split(target.substr(q + 1), '&'))
        if (StartsWith(kv, "scope=")) {
          // repository:NAME:ACTIONS
          std::string scope = UrlDecode(kv.substr(6));
          size_t first = scope.find(':'), last = scope.rfind(':');
          if (first == std::string::npos || first == last) continue;
          access.push_back({{"type", scope.substr(0, first)},
                            {"name", scope.substr(first + 1, last - first - 1)},
                            {"actions", Split(scope.substr(last + 1), ',')}});
        }
    int64_t now = time(nullptr);
    nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5c", {cert_der_b64_}}};
    nlohmann::json claims = {{"iss", kIssuer}, {"sub", user_},        {"aud", kService},
                             {"exp", now + 600}, {"nbf", now - 10},   {"iat", now},
                             {"jti", std::to_string(requests_)},      {"access", access}};
    std::string signing = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t siglen = 0;
    EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key_);
    EVP_DigestSign(md, nullptr, &siglen, reinterpret_cast<const unsigned char*>(signing.data()),
                   signing.size());
    std::string sig(siglen, '\0');
    EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &siglen,
                   reinterpret_cast<const unsigned char*>(signing.data()), signing.size());
    EVP_MD_CTX_free(md);
    sig.resize(siglen);
    std::string jwt = signing + "." + Base64Url(sig);
    // Half the servers answer "token", others (OAuth2) "access_token": send the latter only
    // on odd requests so both paths run.
    nlohmann::json body = requests_ % 2 ? nlohmann::json{{"access_token", jwt}}
                                        : nlohmann::json{{"token", jwt}};
    body["expires_in"] = 600;
    Reply(c, 200, body.dump());
  }
  static void Reply(int c, int status, const std::string& body) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Unauthorized") +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
    (void)WriteAll(c, r, "token reply");
  }

  std::string user_, password_, cert_path_, cert_der_b64_;
  EVP_PKEY* key_ = nullptr;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, refused_{0};
  std::thread thread_;
};

}  // namespace shale::registry::testing
