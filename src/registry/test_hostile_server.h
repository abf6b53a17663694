// Test fixture for bad input a real registry never sends: a small HTTP server (python3's
// http.server) that speaks /v2/ like a registry and then answers manifests with a schema1
// document, an unknown media type, a body past the size limit, or a redirect loop.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "util/fs.h"

namespace shale::registry::testing {

inline constexpr const char* kHostileServerPy = R"PY(
import http.server, sys, json
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, ctype, body, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for k, v in (extra or {}).items(): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        p = self.path
        if p == "/v2/": return self.send(200, "application/json", b"{}")
        if p.endswith("/manifests/schema1"):
            return self.send(200, "application/vnd.docker.distribution.manifest.v1+prettyjws",
                             json.dumps({"schemaVersion": 1, "name": "x", "tag": "schema1",
                                         "fsLayers": []}).encode())
        if p.endswith("/manifests/weird"):
            return self.send(200, "application/vnd.example.thing+json",
                             json.dumps({"schemaVersion": 2,
                                         "mediaType": "application/vnd.example.thing+json"}).encode())
        if p.endswith("/manifests/huge"):
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(2 << 30))
            self.end_headers()
            chunk = b" " * 65536
            try:
                for _ in range((2 << 30) // 65536): self.wfile.write(chunk)
            except Exception: pass
            return
        if "/blobs/" in p:
            return self.send(307, "text/plain", b"", {"Location": p})  # to itself: a loop
        return self.send(404, "text/html", b"<html>nothing</html>")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
)PY";

class HostileServer {
 public:
  // "" on success.
  std::string Start(int port) {
    auto t = ScopedTempDir::Make("/tmp", "shale-hostile-");
    if (!t) return t.error().message();
    dir_ = std::move(*t);
    std::ofstream(dir_.path() + "/server.py") << kHostileServerPy;
    host_ = "127.0.0.1:" + std::to_string(port);
    pid_ = fork();
    if (pid_ < 0) return "fork";
    if (pid_ == 0) {
      freopen("/dev/null", "w", stderr);
      execlp("python3", "python3", (dir_.path() + "/server.py").c_str(),
             std::to_string(port).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      std::string cmd = "curl -s -o /dev/null http://" + host_ + "/v2/";
      if (system(cmd.c_str()) == 0) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return "hostile server did not start";
  }
  ~HostileServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& host() const { return host_; }

 private:
  ScopedTempDir dir_;
  pid_t pid_ = -1;
  std::string host_;
};

}  // namespace shale::registry::testing
