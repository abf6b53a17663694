// An OCI distribution (registry v2) client over libcurl: ping, auth, manifests, blobs.
//
// One Client talks to one registry ("host[:port]") through one curl easy handle, so every
// request reuses the kept-alive connection (HTTP/2 when the server offers it over TLS).
// Auth follows the registry's WWW-Authenticate challenge: Basic sends the credentials on
// every request; Bearer fetches a token from the realm for the request's scope (credentials
// go only to the token server) and caches it per scope.
//
// Trust: TLS is verified against the system CAs plus certs.d/<host[:port]>/*.crt under each
// ClientOptions::certs_dirs (client certificates from *.cert/*.key there too). A loopback
// registry (localhost, 127.0.0.0/8, ::1) that does not speak TLS is used over plain HTTP, as
// docker does; any other registry needs tls_verify=false for that (then certificates are not
// checked either). A certificate that does not verify is never silently downgraded.
//
// Errors are one line naming the registry: "registry 127.0.0.1:5000: <cause>", with
// kNetwork (cannot connect, TLS), kUnauthorized (401/403, wrong password), kNotFound
// (manifest/blob unknown), kCorrupt (digest mismatch, naming the digest), kUnsupported
// (schema1, unknown media type) and kInvalidArgument (not a registry, too large).
// Retries: 5xx and dropped connections are retried with exponential backoff; a blob
// download that drops resumes with a Range request.
//
// Thread-safety: a Client is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/image_spec.h"
#include "registry/auth.h"
#include "util/digest.h"
#include "util/error.h"

namespace shale::registry {

// Media types a pull accepts, in docker's order.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json";
inline constexpr int64_t kMaxManifestSize = 4 << 20;  // docker's limit (4 MiB)

struct ClientOptions {
  bool tls_verify = true;
  // Where certs.d/<host[:port]>/ lives; defaults: /etc/docker/certs.d,
  // /etc/containers/certs.d, $HOME/.config/containers/certs.d.
  std::vector<std::string> certs_dirs = DefaultCertsDirs();
  // Explicit credentials (login); otherwise looked up in auth_files.
  std::optional<Credentials> credentials;
  AuthFiles auth_files = AuthFiles::Default();
  int retries = 3;          // extra attempts after a 5xx or a dropped connection
  int backoff_ms = 250;     // first wait; doubles each time
  int connect_timeout_s = 30;
  int stall_timeout_s = 60;  // a transfer slower than 1 byte/s for this long has dropped

  static std::vector<std::string> DefaultCertsDirs();
};

struct FetchedManifest {
  std::string bytes;
  std::string media_type;
  Digest digest;  // sha256 of bytes (checked against the reference / Docker-Content-Digest)
};

// Receives a blob's bytes as they arrive. An error stops the transfer.
using Sink = std::function<Result<void>(std::string_view)>;
// Bytes transferred so far.
using ProgressFn = std::function<void(int64_t)>;

// Counters, for tests and benchmarks.
struct ClientStats {
  int requests = 0;         // HTTP requests sent (token requests included)
  int manifest_gets = 0;
  int blob_gets = 0;        // blob GET requests (ranged resumptions included)
  int blob_uploads = 0;     // blob PUTs that completed an upload
  int blob_mounts = 0;      // cross-repository mounts the registry accepted
  int retries = 0;

  ClientStats& operator+=(const ClientStats& o) {
    requests += o.requests;
    manifest_gets += o.manifest_gets;
    blob_gets += o.blob_gets;
    blob_uploads += o.blob_uploads;
    blob_mounts += o.blob_mounts;
    retries += o.retries;
    return *this;
  }
};

class Client {
 public:
  // Resolves the scheme and pings /v2/. `registry` is "host[:port]" ("docker.io" is
  // talked to at registry-1.docker.io).
  static Result<std::unique_ptr<Client>> Connect(const std::string& registry,
                                                 ClientOptions opts = {});
  // A second client of the same registry with its own connection, for another thread: the
  // scheme, credentials, CAs and tokens are shared as they are now, nothing is re-pinged.
  Result<std::unique_ptr<Client>> Clone() const;
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& registry() const { return registry_; }
  const std::string& base_url() const { return base_; }  // "https://host:port"
  const ClientStats& stats() const { return stats_; }

  // login: authenticates with the credentials against /v2/ (or its token server).
  // kUnauthorized "registry X: wrong username or password" when they are refused.
  Result<void> CheckLogin();

  // GET /v2/<repo>/manifests/<tag or digest> with kManifestAccept. A manifest fetched by
  // digest must hash to it (kCorrupt). kUnsupported for schema1 or an unknown media type.
  Result<FetchedManifest> GetManifest(const std::string& repo, const std::string& reference);
  // HEAD: the descriptor (media type, digest, size), nullopt if the registry has none.
  Result<std::optional<oci::Descriptor>> HeadManifest(const std::string& repo,
                                                      const std::string& reference);
  // PUT; returns the digest of `bytes` (kCorrupt if the registry reports another).
  Result<Digest> PutManifest(const std::string& repo, const std::string& reference,
                             const std::string& media_type, const std::string& bytes);

  // HEAD /v2/<repo>/blobs/<digest>: its size, nullopt if absent.
  Result<std::optional<int64_t>> HeadBlob(const std::string& repo, const Digest& digest);
  // Streams the blob into `sink`, hashing as it goes, following redirects. `size` (if >= 0)
  // is checked. Starts at `start` (the caller holds bytes [0, start) and passes their
  // running hash in `prefix`); a dropped connection resumes with Range. kCorrupt naming the
  // digest if the bytes do not hash to it; the sink has then seen bad bytes.
  Result<void> GetBlob(const std::string& repo, const Digest& digest, int64_t size,
                       const Sink& sink, const ProgressFn& progress = nullptr,
                       int64_t start = 0, Sha256* prefix = nullptr);
  // A small blob (config) into memory, at most `max` bytes, verified.
  Result<std::string> GetBlobBytes(const std::string& repo, const Digest& digest,
                                   int64_t max = 64 << 20);
  // POST ?mount=<digest>&from=<from_repo>. True if the registry mounted it (201).
  Result<bool> MountBlob(const std::string& repo, const Digest& digest,
                         const std::string& from_repo);
  // Uploads `size` bytes of `fd` (read with pread from offset 0) as blob `digest`:
  // POST + PUT when chunk_size is 0, else POST + PATCH chunks of chunk_size + PUT.
  Result<void> PutBlob(const std::string& repo, const Digest& digest, int fd, int64_t size,
                       int64_t chunk_size = 0, const ProgressFn& progress = nullptr);

  struct Request;
  struct Response;

 private:
  Client() = default;
  Result<Response> Send(Request& req);
  Result<Response> SendOnce(Request& req, int* curl_code);
  Result<void> Authenticate(const std::vector<Challenge>& cs, const std::string& scope);
  Result<std::string> FetchToken(const Challenge& c, const std::string& scope);
  std::string AuthHeader(const std::string& scope) const;
  Error HttpError(const Response& r, const std::string& what) const;
  Error Fail(Errc code, const std::string& msg) const;
  std::string Url(const std::string& path) const { return base_ + path; }
  std::string Absolute(const std::string& location) const;
  Result<void> Ping();

  std::string registry_;
  std::string host_;  // where requests go (registry-1.docker.io for docker.io)
  std::string base_;
  ClientOptions opts_;
  std::optional<Credentials> creds_;
  std::string ca_blob_;
  std::string client_cert_, client_key_;
  struct CurlHolder;
  std::unique_ptr<CurlHolder> curl_;
  bool basic_ = false;
  std::optional<Challenge> bearer_;
  std::map<std::string, std::string> tokens_;  // scope -> token
  ClientStats stats_;
};

// True for localhost, 127.0.0.0/8 and [::1] (with or without a port).
bool IsLoopback(const std::string& registry);
// "repository:<repo>:pull" / ":pull,push".
std::string RepoScope(const std::string& repo, bool push);

}  // namespace shale::registry
