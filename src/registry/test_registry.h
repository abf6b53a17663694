// Test fixture: a real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 at a
// free port, storage in a temporary dir; optionally htpasswd basic auth and TLS with a
// self-signed certificate made with the openssl CLI. Killed and reaped in the destructor.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "util/fs.h"

namespace shale::registry::testing {

struct RegistryConfig {
  bool tls = false;
  std::string user, password;  // htpasswd auth if user is set
  // Token auth instead: the token server's realm and the certificate its JWTs carry.
  std::string token_realm, token_cert;
};

class TestRegistry {
 public:
  // Returns an error string ("" on success) so tests can ASSERT on it.
  std::string Start(const RegistryConfig& cfg) {
    auto t = ScopedTempDir::Make("/tmp", "shale-registry-test-");
    if (!t) return t.error().message();
    dir_ = std::move(*t);
    port_ = FreePort();
    if (port_ <= 0) return "no free port";
    host_ = "127.0.0.1:" + std::to_string(port_);
    std::string d = dir_.path();
    std::string yml = "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
                      "storage:\n  filesystem:\n    rootdirectory: " + d + "/data\n"
                      "  delete:\n    enabled: true\n"
                      "http:\n  addr: " + host_ + "\n  secret: shale-test\n";
    if (cfg.tls) {
      certs_dir_ = d + "/certs.d";
      std::string c = certs_dir_ + "/" + host_;
      std::string cmd = "mkdir -p " + c + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
                        "-keyout " + d + "/key.pem -out " + d + "/cert.pem -subj /CN=127.0.0.1 "
                        "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 && cp " + d +
                        "/cert.pem " + c + "/ca.crt";
      if (system(cmd.c_str()) != 0) return "openssl req failed";
      yml += "  tls:\n    certificate: " + d + "/cert.pem\n    key: " + d + "/key.pem\n";
    }
    if (!cfg.user.empty()) {
      std::string cmd = "htpasswd -Bbn '" + cfg.user + "' '" + cfg.password + "' > " + d +
                        "/htpasswd 2>/dev/null";
      if (system(cmd.c_str()) != 0) return "htpasswd failed";
      yml += "auth:\n  htpasswd:\n    realm: shale-test\n    path: " + d + "/htpasswd\n";
    }
    if (!cfg.token_realm.empty())
      yml += "auth:\n  token:\n    realm: " + cfg.token_realm +
             "\n    service: shale-test-registry\n    issuer: shale-test-issuer\n"
             "    rootcertbundle: " + cfg.token_cert + "\n";
    std::ofstream(d + "/config.yml") << yml;
    std::string log = d + "/registry.log";
    pid_ = fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      // One open file for both streams: separate offsets would overwrite each other.
      if (!freopen(log.c_str(), "w", stdout)) _exit(127);
      dup2(STDOUT_FILENO, STDERR_FILENO);
      execlp("docker-registry", "docker-registry", "serve", (d + "/config.yml").c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      if (CanConnect()) return "";
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return "docker-registry exited; see its log";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return "docker-registry did not start listening on " + host_;
  }

  ~TestRegistry() { Stop(); }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  int port() const { return port_; }

  const std::string& host() const { return host_; }
  const std::string& dir() const { return dir_.path(); }
  const std::string& certs_dir() const { return certs_dir_; }
  std::string storage() const { return dir_.path() + "/data/docker/registry/v2"; }
  std::string log_path() const { return dir_.path() + "/registry.log"; }
  std::string BlobDataPath(const std::string& hex) const {
    return storage() + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
  }

 private:
  static int FreePort() {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(s);
    return port;
  }
  bool CanConnect() const {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    bool ok = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    return ok;
  }

  ScopedTempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string host_, certs_dir_;
};

}  // namespace shale::registry::testing
