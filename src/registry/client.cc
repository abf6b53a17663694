#include "registry/client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "registry/curl_library.h"
#include "util/fs.h"
#include "util/strings.h"

namespace shale::registry {

namespace {
// Every Client method runs after Connect, which loaded the library.
const CurlLibrary& curl() { return *LoadCurl().value(); }
}  // namespace

struct Client::CurlHolder {
  CURL* h = nullptr;
  ~CurlHolder() {
    if (h) curl().easy_cleanup(h);
  }
};

struct Client::Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string scope;                 // auth scope ("" = none)
  const std::string* body = nullptr;  // request body in memory
  int body_fd = -1;                  // or from a file, [body_off, body_off + body_len)
  int64_t body_off = 0, body_len = 0;
  bool has_body = false;
  Sink sink;                         // 2xx bodies go here instead of Response::body
  int64_t max_body = kMaxManifestSize;
  bool follow = false;
  bool retry = true;                 // whether Send may repeat it
  bool token_request = false;        // to the token server: never authenticated by us
  int stall_timeout_s = 0;
};

struct Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; last value wins
  std::string body;
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

namespace {

struct Transfer {
  Client::Request* req;
  Client::Response* resp;
  CURL* h;
  std::optional<Error> sink_error;
  bool too_large = false;
  int64_t sent = 0;
};

size_t OnHeader(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line(data, size * n);
  if (StartsWith(line, "HTTP/")) {
    t->resp->headers.clear();  // a new response (after a redirect or 100 Continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  t->resp->headers[name] = std::string(Trim(line.substr(colon + 1)));
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  long status = 0;
  curl().easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
  if (t->req->sink && status >= 200 && status < 300) {
    auto r = t->req->sink(std::string_view(data, len));
    if (!r) {
      t->sink_error = std::move(r).error();
      return 0;
    }
    return len;
  }
  if (static_cast<int64_t>(t->resp->body.size() + len) > t->req->max_body) {
    t->too_large = true;
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  Client::Request* r = t->req;
  int64_t left = r->body_len - t->sent;
  size_t want = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(size * n)));
  if (want == 0) return 0;
  if (r->body) {
    memcpy(buf, r->body->data() + t->sent, want);
    t->sent += static_cast<int64_t>(want);
    return want;
  }
  for (;;) {
    ssize_t got = ::pread(r->body_fd, buf, want, r->body_off + t->sent);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return CURL_READFUNC_ABORT;
    t->sent += got;
    return static_cast<size_t>(got);
  }
}

bool Retryable(int code) {
  switch (code) {
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::string Escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

std::string WithQuery(const std::string& url, const std::string& q) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + q;
}

// The registry's own explanation: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}.
std::string RegistryMessage(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array() ||
      j["errors"].empty())
    return "";
  std::vector<std::string> parts;
  for (const auto& e : j["errors"]) {
    if (!e.is_object()) continue;
    std::string m = e.value("message", "");
    std::string c = e.value("code", "");
    parts.push_back(m.empty() ? c : m);
  }
  return Join(parts, "; ");
}


bool IsSchema1(std::string_view mt) {
  return mt == "application/vnd.docker.distribution.manifest.v1+json" ||
         mt == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

}  // namespace

bool IsLoopback(const std::string& registry) {
  std::string host = registry;
  if (StartsWith(host, "[")) {
    size_t end = host.find(']');
    host = end == std::string::npos ? host : host.substr(1, end - 1);
    return host == "::1";
  }
  if (size_t colon = host.rfind(':'); colon != std::string::npos) host = host.substr(0, colon);
  return host == "localhost" || StartsWith(host, "127.");
}

std::string RepoScope(const std::string& repo, bool push) {
  return "repository:" + repo + (push ? ":pull,push" : ":pull");
}

std::vector<std::string> ClientOptions::DefaultCertsDirs() {
  std::vector<std::string> dirs = {"/etc/docker/certs.d", "/etc/containers/certs.d"};
  const char* home = getenv("HOME");
  if (home && *home) dirs.push_back(std::string(home) + "/.config/containers/certs.d");
  return dirs;
}

Client::~Client() = default;

Error Client::Fail(Errc code, const std::string& msg) const {
  return Error(code, "registry " + registry_ + ": " + msg);
}

std::string Client::Absolute(const std::string& loc) const {
  if (StartsWith(loc, "http://") || StartsWith(loc, "https://")) return loc;
  return base_ + (StartsWith(loc, "/") ? "" : "/") + loc;
}

Result<std::unique_ptr<Client>> Client::Connect(const std::string& registry,
                                                ClientOptions opts) {
  TRY(LoadCurl());
  std::unique_ptr<Client> c(new Client());
  c->registry_ = registry;
  c->host_ = registry == "docker.io" ? "registry-1.docker.io" : registry;
  c->opts_ = std::move(opts);
  c->curl_ = std::make_unique<CurlHolder>();
  c->curl_->h = curl().easy_init();
  if (!c->curl_->h) return Error(Errc::kInternal, "curl_easy_init failed");
  if (c->opts_.credentials) {
    c->creds_ = c->opts_.credentials;
  } else {
    c->creds_ = TRY(LookupCredentials(c->opts_.auth_files, registry));
  }
  // CAs: the system bundle plus certs.d/<registry>/*.crt (docker adds them to the pool).
  std::string extra;
  for (const auto& dir : c->opts_.certs_dirs) {
    std::string d = dir + "/" + registry;
    auto names = ListDir(d);
    if (!names) continue;
    for (const auto& n : *names) {
      if (EndsWith(n, ".crt")) {
        extra += TRY(ReadFile(d + "/" + n)) + "\n";
      } else if (EndsWith(n, ".cert") && c->client_cert_.empty()) {
        std::string key = d + "/" + n.substr(0, n.size() - 5) + ".key";
        if (!PathExists(key))
          return c->Fail(Errc::kInvalidArgument, "client certificate " + d + "/" + n +
                                                     " has no matching .key file");
        c->client_cert_ = d + "/" + n;
        c->client_key_ = key;
      }
    }
  }
  if (!extra.empty()) {
    for (const char* bundle : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"})
      if (auto b = ReadFile(bundle); b) {
        c->ca_blob_ = *b + "\n";
        break;
      }
    c->ca_blob_ += extra;
  }
  c->base_ = "https://" + c->host_;
  TRY(c->Ping());
  return c;
}

Result<std::unique_ptr<Client>> Client::Clone() const {
  std::unique_ptr<Client> c(new Client());
  c->registry_ = registry_;
  c->host_ = host_;
  c->base_ = base_;
  c->opts_ = opts_;
  c->creds_ = creds_;
  c->ca_blob_ = ca_blob_;
  c->client_cert_ = client_cert_;
  c->client_key_ = client_key_;
  c->basic_ = basic_;
  c->bearer_ = bearer_;
  c->tokens_ = tokens_;
  c->curl_ = std::make_unique<CurlHolder>();
  c->curl_->h = curl().easy_init();
  if (!c->curl_->h) return Error(Errc::kInternal, "curl_easy_init failed");
  return c;
}

Result<void> Client::Ping() {
  Request req;
  req.url = Url("/v2/");
  req.retry = true;
  int code = 0;
  auto resp = SendOnce(req, &code);
  bool plain_ok = IsLoopback(registry_) || !opts_.tls_verify;
  // A server that answers TLS with plain HTTP ("wrong version number"): docker's fallback.
  if (!resp && plain_ok && (code == CURLE_SSL_CONNECT_ERROR || code == CURLE_RECV_ERROR ||
                            code == CURLE_GOT_NOTHING)) {
    base_ = "http://" + host_;
    req.url = Url("/v2/");
    resp = SendOnce(req, &code);
  }
  if (!resp && !plain_ok && code == CURLE_SSL_CONNECT_ERROR)
    return Fail(Errc::kNetwork, "TLS handshake failed (" + resp.error().message() +
                                    "); if the registry speaks plain HTTP, use --tls-verify=false");
  if (!resp) return std::move(resp).error();
  if (resp->status == 200 || resp->status == 401) {
    if (resp->status == 401) {
      auto cs = ParseChallenges(resp->Header("www-authenticate"));
      if (!cs) return Fail(Errc::kInvalidArgument, "answers 401 without a valid WWW-Authenticate challenge");
      for (const auto& ch : *cs) {
        if (ch.scheme == "bearer" && !ch.Param("realm").empty()) bearer_ = ch;
        if (ch.scheme == "basic") basic_ = true;
      }
      if (!bearer_ && !basic_)
        return Fail(Errc::kUnsupported, "asks for an unsupported authentication scheme: " +
                                            resp->Header("www-authenticate"));
      if (bearer_) basic_ = false;
    }
    std::string ct = resp->Header("content-type");
    if (resp->Header("docker-distribution-api-version").empty() &&
        ct.find("json") == std::string::npos && !resp->body.empty())
      return Fail(Errc::kInvalidArgument,
                  "answers /v2/ with " + (ct.empty() ? std::string("something") : ct) +
                      ", not the registry API (is " + base_ + " a registry?)");
    return Ok();
  }
  return Fail(Errc::kInvalidArgument, "answers /v2/ with HTTP " + std::to_string(resp->status) +
                                          ", not the registry API (is " + base_ +
                                          " a registry?)");
}

std::string Client::AuthHeader(const std::string& scope) const {
  if (bearer_) {
    auto it = tokens_.find(scope);
    if (it != tokens_.end() && !it->second.empty()) return "Authorization: Bearer " + it->second;
    return "";
  }
  if (basic_ && creds_)
    return "Authorization: Basic " + Base64Encode(creds_->username + ":" + creds_->password);
  return "";
}

Result<Client::Response> Client::SendOnce(Request& req, int* curl_code) {
  CURL* h = curl_->h;
  curl().easy_reset(h);  // keeps the connection cache
  Response resp;
  Transfer t{&req, &resp, h, std::nullopt, false, 0};
  ++stats_.requests;
  curl().easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl().easy_setopt(h, CURLOPT_USERAGENT, "shale/0.1");
  curl().easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl().easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl().easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(opts_.connect_timeout_s));
  curl().easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl().easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(req.stall_timeout_s ? req.stall_timeout_s
                                                         : opts_.stall_timeout_s));
  curl().easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl().easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (req.follow) {
    curl().easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl().easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  }
  if (!opts_.tls_verify) {
    curl().easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl().easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_blob ca{};
  if (!ca_blob_.empty()) {
    ca.data = ca_blob_.data();
    ca.len = ca_blob_.size();
    ca.flags = CURL_BLOB_NOCOPY;
    curl().easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!client_cert_.empty()) {
    curl().easy_setopt(h, CURLOPT_SSLCERT, client_cert_.c_str());
    curl().easy_setopt(h, CURLOPT_SSLKEY, client_key_.c_str());
  }
  if (req.method == "HEAD") {
    curl().easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET") {
    curl().easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  if (req.has_body) {
    if (req.body) req.body_len = static_cast<int64_t>(req.body->size());
    curl().easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl().easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body_len));
    curl().easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
    curl().easy_setopt(h, CURLOPT_READDATA, &t);
  } else if (req.method == "POST") {
    curl().easy_setopt(h, CURLOPT_POST, 1L);
    curl().easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    curl().easy_setopt(h, CURLOPT_POSTFIELDS, "");
  }
  struct curl_slist* hdrs = nullptr;
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hdr_owner(nullptr, curl().slist_free_all);
  for (const auto& hd : req.headers) hdrs = curl().slist_append(hdrs, hd.c_str());
  if (!req.token_request) {
    std::string auth = AuthHeader(req.scope);
    if (!auth.empty()) hdrs = curl().slist_append(hdrs, auth.c_str());
  }
  hdrs = curl().slist_append(hdrs, "Expect:");  // no 100-continue round trip
  hdr_owner.reset(hdrs);
  curl().easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl().easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
  curl().easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl().easy_setopt(h, CURLOPT_WRITEFUNCTION, OnWrite);
  curl().easy_setopt(h, CURLOPT_WRITEDATA, &t);
  char errbuf[CURL_ERROR_SIZE] = "";
  curl().easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

  CURLcode rc = curl().easy_perform(h);
  *curl_code = rc;
  if (t.sink_error) return std::move(*t.sink_error);
  if (t.too_large)
    return Fail(Errc::kInvalidArgument, "response to " + req.method + " " + req.url +
                                            " is larger than the " +
                                            std::to_string(req.max_body >> 20) + " MiB limit");
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl().easy_strerror(rc);
    switch (rc) {
      case CURLE_PEER_FAILED_VERIFICATION:
        return Fail(Errc::kNetwork,
                    "TLS certificate not trusted (" + detail + "); put the registry's CA in "
                    "/etc/containers/certs.d/" + registry_ + "/ca.crt or use --tls-verify=false");
      case CURLE_COULDNT_RESOLVE_HOST:
        return Fail(Errc::kNetwork, "unknown host (" + detail + ")");
      case CURLE_COULDNT_CONNECT:
        return Fail(Errc::kNetwork, "cannot connect (" + detail + ")");
      case CURLE_TOO_MANY_REDIRECTS:
        return Fail(Errc::kNetwork, "redirect loop at " + req.url + " (" + detail + ")");
      case CURLE_OPERATION_TIMEDOUT:
        return Fail(Errc::kNetwork, (req.token_request ? "token server " + req.url : req.url) +
                                        " did not answer (" + detail + ")");
      default:
        return Fail(Errc::kNetwork, req.method + " " + req.url + ": " + detail);
    }
  }
  curl().easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Result<Client::Response> Client::Send(Request& req) {
  bool authed = false;
  int backoff = opts_.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    // A known Bearer challenge: get the scope's token before the first try.
    if (bearer_ && !req.token_request && !tokens_.count(req.scope))
      TRY(Authenticate({*bearer_}, req.scope));
    int code = 0;
    auto resp = SendOnce(req, &code);
    bool can_retry = req.retry && attempt < opts_.retries;
    if (!resp) {
      if (can_retry && Retryable(code)) {
        ++stats_.retries;
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
        backoff *= 2;
        continue;
      }
      return std::move(resp).error();
    }
    if (resp->status == 401 && !authed && !req.token_request) {
      authed = true;
      auto cs = ParseChallenges(resp->Header("www-authenticate"));
      if (!cs) return Fail(Errc::kUnauthorized, "401 Unauthorized without a valid challenge");
      TRY(Authenticate(*cs, req.scope));
      continue;
    }
    if (resp->status >= 500 && resp->status != 501 && can_retry) {
      ++stats_.retries;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff *= 2;
      continue;
    }
    return resp;
  }
}

Result<void> Client::Authenticate(const std::vector<Challenge>& cs, const std::string& scope) {
  for (const auto& c : cs) {
    if (c.scheme == "bearer" && !c.Param("realm").empty()) {
      bearer_ = c;
      basic_ = false;
      tokens_[scope] = TRY(FetchToken(c, scope));
      return Ok();
    }
  }
  for (const auto& c : cs) {
    if (c.scheme == "basic") {
      if (!creds_)
        return Fail(Errc::kUnauthorized,
                    "authentication required; run `shale login " + registry_ + "`");
      if (basic_)  // the credentials were sent and refused
        return Fail(Errc::kUnauthorized, "wrong username or password");
      basic_ = true;
      return Ok();
    }
  }
  return Fail(Errc::kUnsupported, "asks for an unsupported authentication scheme");
}

Result<std::string> Client::FetchToken(const Challenge& c, const std::string& scope) {
  Request req;
  req.token_request = true;
  req.stall_timeout_s = std::min(30, opts_.stall_timeout_s);  // a token server that hangs
  std::string url = c.Param("realm");
  std::vector<std::string> q;
  if (!c.Param("service").empty()) q.push_back("service=" + Escape(c.Param("service")));
  // Several scopes (mount: this repo push, the source repo pull) are separate parameters.
  for (const auto& s : Split(scope, ' '))
    if (!s.empty()) q.push_back("scope=" + Escape(s));
  if (!q.empty()) url = WithQuery(url, Join(q, "&"));
  req.url = url;
  if (creds_)
    req.headers.push_back("Authorization: Basic " +
                          Base64Encode(creds_->username + ":" + creds_->password));
  Response resp = TRY(Send(req).Wrap("token server " + c.Param("realm")));
  if (resp.status == 401 || resp.status == 403)
    return Fail(Errc::kUnauthorized,
                creds_ ? "wrong username or password (token server " + c.Param("realm") +
                             " answered " + std::to_string(resp.status) + ")"
                       : "authentication required; run `shale login " + registry_ + "`");
  if (resp.status != 200)
    return Fail(Errc::kNetwork, "token server " + c.Param("realm") + " answered HTTP " +
                                    std::to_string(resp.status));
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Fail(Errc::kInvalidArgument, "token server " + c.Param("realm") + " answered no JSON");
  std::string tok = j.value("token", "");
  if (tok.empty()) tok = j.value("access_token", "");
  if (tok.empty())
    return Fail(Errc::kInvalidArgument, "token server " + c.Param("realm") + " gave no token");
  return tok;
}

Error Client::HttpError(const Response& r, const std::string& what) const {
  std::string msg = RegistryMessage(r.body);
  std::string ct = r.Header("content-type");
  if (msg.empty() && ct.find("html") != std::string::npos)
    msg = "an HTML page, not the registry API";
  std::string line = what + ": HTTP " + std::to_string(r.status) + (msg.empty() ? "" : " " + msg);
  if (r.status == 401)
    return Fail(Errc::kUnauthorized,
                line + (creds_ ? " (credentials refused)" : "; run `shale login " + registry_ + "`"));
  if (r.status == 403) return Fail(Errc::kUnauthorized, line + " (access denied)");
  if (r.status == 404) return Fail(Errc::kNotFound, line);
  return Fail(Errc::kNetwork, line);
}

Result<void> Client::CheckLogin() {
  if (!creds_) return Fail(Errc::kInvalidArgument, "no credentials given");
  Request req;
  req.url = Url("/v2/");
  if (bearer_) {
    tokens_.erase("");
    TRY(Authenticate({*bearer_}, ""));
  } else if (!basic_) {
    return Ok();  // the registry needs no authentication: docker accepts the login
  }
  Response r = TRY(Send(req));
  if (r.status == 401) return Fail(Errc::kUnauthorized, "wrong username or password");
  if (r.status != 200) return HttpError(r, "GET /v2/");
  return Ok();
}

Result<FetchedManifest> Client::GetManifest(const std::string& repo,
                                            const std::string& reference) {
  Request req;
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.scope = RepoScope(repo, false);
  req.headers.push_back("Accept: " + std::string(kManifestAccept));
  req.follow = true;
  ++stats_.manifest_gets;
  std::string what = "manifest " + repo + ":" + reference;
  if (StartsWith(reference, "sha256:")) what = "manifest " + repo + "@" + reference;
  Response r = TRY(Send(req));
  if (r.status != 200) return HttpError(r, what);
  FetchedManifest m;
  m.digest = Digest::Of(r.body);
  if (StartsWith(reference, "sha256:") && m.digest.str() != reference)
    return Fail(Errc::kCorrupt, what + ": content has digest " + m.digest.str());
  std::string hd = r.Header("docker-content-digest");
  if (StartsWith(hd, "sha256:") && hd != m.digest.str())
    return Fail(Errc::kCorrupt, what + ": content has digest " + m.digest.str() +
                                    ", Docker-Content-Digest says " + hd);
  std::string ct = r.Header("content-type");
  if (size_t semi = ct.find(';'); semi != std::string::npos) ct = std::string(Trim(ct.substr(0, semi)));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Fail(Errc::kInvalidArgument, what + " is not JSON (" + ct + ")");
  std::string field = j.value("mediaType", "");
  m.media_type = !field.empty() ? field : ct;
  if (m.media_type.empty() || m.media_type == "application/json") {
    if (j.value("schemaVersion", 0) == 1) m.media_type = "application/vnd.docker.distribution.manifest.v1+json";
    else if (j.contains("manifests")) m.media_type = std::string(oci::kMediaTypeOciIndex);
    else if (j.contains("config")) m.media_type = std::string(oci::kMediaTypeOciManifest);
  }
  if (IsSchema1(m.media_type) || j.value("schemaVersion", 2) == 1)
    return Fail(Errc::kUnsupported,
                what + " is a Docker Image Format v1 (schema 1) manifest, which is no longer "
                       "supported (as in docker 26); push the image again with a current client");
  if (m.media_type != oci::kMediaTypeDockerManifest && m.media_type != oci::kMediaTypeOciManifest &&
      m.media_type != oci::kMediaTypeOciIndex && m.media_type != oci::kMediaTypeDockerManifestList)
    return Fail(Errc::kUnsupported, what + " has unsupported media type \"" + m.media_type + "\"");
  m.bytes = std::move(r.body);
  return m;
}

Result<std::optional<oci::Descriptor>> Client::HeadManifest(const std::string& repo,
                                                            const std::string& reference) {
  Request req;
  req.method = "HEAD";
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.scope = RepoScope(repo, false);
  req.headers.push_back("Accept: " + std::string(kManifestAccept));
  req.follow = true;
  Response r = TRY(Send(req));
  if (r.status == 404) return std::optional<oci::Descriptor>();
  if (r.status != 200) return HttpError(r, "manifest " + repo + ":" + reference);
  oci::Descriptor d;
  d.media_type = r.Header("content-type");
  auto dg = Digest::Parse(r.Header("docker-content-digest"));
  if (dg) d.digest = *dg;
  std::string len = r.Header("content-length");
  int64_t n = 0;
  if (std::from_chars(len.data(), len.data() + len.size(), n).ec == std::errc()) d.size = n;
  return std::optional<oci::Descriptor>(d);
}

Result<Digest> Client::PutManifest(const std::string& repo, const std::string& reference,
                                   const std::string& media_type, const std::string& bytes) {
  Request req;
  req.method = "PUT";
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.scope = RepoScope(repo, true);
  req.headers.push_back("Content-Type: " + media_type);
  req.body = &bytes;
  req.has_body = true;
  Response r = TRY(Send(req));
  std::string what = "put manifest " + repo + ":" + reference;
  if (r.status != 201 && r.status != 200) return HttpError(r, what);
  Digest d = Digest::Of(bytes);
  std::string hd = r.Header("docker-content-digest");
  if (StartsWith(hd, "sha256:") && hd != d.str())
    return Fail(Errc::kCorrupt, what + ": registry stored digest " + hd + ", expected " + d.str());
  return d;
}

Result<std::optional<int64_t>> Client::HeadBlob(const std::string& repo, const Digest& digest) {
  Request req;
  req.method = "HEAD";
  req.url = Url("/v2/" + repo + "/blobs/" + digest.str());
  req.scope = RepoScope(repo, false);
  req.follow = true;
  Response r = TRY(Send(req));
  if (r.status == 404) return std::optional<int64_t>();
  if (r.status != 200) return HttpError(r, "blob " + digest.str());
  std::string len = r.Header("content-length");
  int64_t n = -1;
  if (std::from_chars(len.data(), len.data() + len.size(), n).ec != std::errc()) n = -1;
  return std::optional<int64_t>(n);
}

Result<void> Client::GetBlob(const std::string& repo, const Digest& digest, int64_t size,
                             const Sink& sink, const ProgressFn& progress, int64_t start,
                             Sha256* prefix) {
  Sha256 own;
  Sha256& sha = prefix ? *prefix : own;
  int64_t got = start;
  std::string what = "blob " + digest.str();
  int backoff = opts_.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    Request req;
    req.url = Url("/v2/" + repo + "/blobs/" + digest.str());
    req.scope = RepoScope(repo, false);
    req.follow = true;  // 307 to the storage backend
    req.retry = false;  // resumed here, from where the bytes stopped
    if (got > 0) req.headers.push_back("Range: bytes=" + std::to_string(got) + "-");
    // A server that ignores Range sends the whole blob again: skip what we have.
    int64_t skip = 0;
    bool first_chunk = true;
    req.sink = [&](std::string_view data) -> Result<void> {
      if (first_chunk) {
        first_chunk = false;
        long status = 0;
        curl().easy_getinfo(curl_->h, CURLINFO_RESPONSE_CODE, &status);
        if (got > 0 && status == 200) skip = got;
      }
      if (skip > 0) {
        size_t k = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(data.size())));
        data.remove_prefix(k);
        skip -= static_cast<int64_t>(k);
        if (data.empty()) return Ok();
      }
      if (size >= 0 && got + static_cast<int64_t>(data.size()) > size)
        return Fail(Errc::kCorrupt, what + ": longer than the " + std::to_string(size) +
                                        " bytes the manifest gives");
      sha.Update(data);
      got += static_cast<int64_t>(data.size());
      TRY(sink(data));
      if (progress) progress(got);
      return Ok();
    };
    ++stats_.blob_gets;
    int code = 0;
    // Auth (401 -> token) goes through Send once; transport drops are handled here.
    Result<Response> r = [&]() -> Result<Response> {
      if (bearer_ && !tokens_.count(req.scope)) TRY(Authenticate({*bearer_}, req.scope));
      auto first = SendOnce(req, &code);
      if (first && first->status == 401) {
        auto cs = ParseChallenges(first->Header("www-authenticate"));
        if (!cs) return Fail(Errc::kUnauthorized, what + ": 401 without a valid challenge");
        TRY(Authenticate(*cs, req.scope));
        return SendOnce(req, &code);
      }
      return first;
    }();
    bool again = attempt < opts_.retries;
    if (!r) {
      if (again && Retryable(code)) {
        ++stats_.retries;
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
        backoff *= 2;
        continue;
      }
      return std::move(r).error();
    }
    if (r->status >= 500 && again) {
      ++stats_.retries;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff *= 2;
      continue;
    }
    if (r->status == 416 && got == size) {
      // Range past the end: we hold the whole blob already.
    } else if (r->status != 200 && r->status != 206) {
      return HttpError(*r, what);
    }
    if (size >= 0 && got < size) {
      if (again) {  // the connection closed early without an error
        ++stats_.retries;
        continue;
      }
      return Fail(Errc::kCorrupt, what + ": got " + std::to_string(got) + " of " +
                                      std::to_string(size) + " bytes");
    }
    break;
  }
  Digest d = sha.Finish();
  if (d != digest)
    return Fail(Errc::kCorrupt, what + ": content has digest " + d.str() + "; refusing it");
  return Ok();
}

Result<std::string> Client::GetBlobBytes(const std::string& repo, const Digest& digest,
                                         int64_t max) {
  std::string out;
  TRY(GetBlob(repo, digest, -1, [&](std::string_view d) -> Result<void> {
    if (static_cast<int64_t>(out.size() + d.size()) > max)
      return Fail(Errc::kInvalidArgument, "blob " + digest.str() + " is larger than " +
                                              std::to_string(max >> 20) + " MiB");
    out.append(d);
    return Ok();
  }));
  return out;
}

Result<bool> Client::MountBlob(const std::string& repo, const Digest& digest,
                               const std::string& from_repo) {
  Request req;
  req.method = "POST";
  req.url = Url("/v2/" + repo + "/blobs/uploads/?mount=" + Escape(digest.str()) + "&from=" +
                Escape(from_repo));
  req.scope = RepoScope(repo, true) + " " + RepoScope(from_repo, false);
  Response r = TRY(Send(req));
  if (r.status == 201) {
    ++stats_.blob_mounts;
    return true;
  }
  if (r.status == 202) {
    // Not mounted; the registry opened an upload session instead. Cancel it.
    std::string loc = r.Header("location");
    if (!loc.empty()) {
      Request del;
      del.method = "DELETE";
      del.url = Absolute(loc);
      del.scope = req.scope;
      (void)Send(del);
    }
    return false;
  }
  return HttpError(r, "mount blob " + digest.str() + " from " + from_repo);
}

Result<void> Client::PutBlob(const std::string& repo, const Digest& digest, int fd,
                             int64_t size, int64_t chunk_size, const ProgressFn& progress) {
  std::string what = "upload blob " + digest.str();
  int backoff = opts_.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    bool again = attempt < opts_.retries;
    auto once = [&]() -> Result<long> {  // returns 0 on success, else the failing status
      Request post;
      post.method = "POST";
      post.url = Url("/v2/" + repo + "/blobs/uploads/");
      post.scope = RepoScope(repo, true);
      Response r = TRY(Send(post));
      if (r.status != 202) {
        if (r.status >= 500) return r.status;
        return HttpError(r, what);
      }
      std::string loc = Absolute(r.Header("location"));
      if (r.Header("location").empty()) return Fail(Errc::kNetwork, what + ": no upload Location");
      int64_t off = 0;
      if (chunk_size > 0) {
        while (off < size) {
          int64_t n = std::min(chunk_size, size - off);
          Request patch;
          patch.method = "PATCH";
          patch.url = loc;
          patch.scope = post.scope;
          patch.retry = false;
          patch.has_body = true;
          patch.body_fd = fd;
          patch.body_off = off;
          patch.body_len = n;
          patch.headers.push_back("Content-Type: application/octet-stream");
          patch.headers.push_back("Content-Range: " + std::to_string(off) + "-" +
                                  std::to_string(off + n - 1));
          Response pr = TRY(Send(patch));
          if (pr.status != 202) {
            if (pr.status >= 500) return pr.status;
            return HttpError(pr, what + " (chunk at " + std::to_string(off) + ")");
          }
          if (!pr.Header("location").empty()) loc = Absolute(pr.Header("location"));
          off += n;
          if (progress) progress(off);
        }
      }
      Request put;
      put.method = "PUT";
      put.url = WithQuery(loc, "digest=" + Escape(digest.str()));
      put.scope = post.scope;
      put.retry = false;
      put.has_body = true;
      put.body_fd = fd;
      put.body_off = off;
      put.body_len = size - off;
      put.headers.push_back("Content-Type: application/octet-stream");
      Response pr = TRY(Send(put));
      if (pr.status != 201) {
        if (pr.status >= 500) return pr.status;
        if (pr.status == 400 && RegistryMessage(pr.body).find("digest") != std::string::npos)
          return Fail(Errc::kCorrupt, what + ": the registry computed another digest (" +
                                          RegistryMessage(pr.body) + ")");
        return HttpError(pr, what);
      }
      if (progress) progress(size);
      return 0L;
    };
    auto r = once();
    if (r && *r == 0) {
      ++stats_.blob_uploads;
      return Ok();
    }
    if (!again) {
      if (!r) return std::move(r).error();
      return Fail(Errc::kNetwork, what + ": HTTP " + std::to_string(*r));
    }
    if (!r && r.error().code() != Errc::kNetwork) return std::move(r).error();
    ++stats_.retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff *= 2;
  }
}

}  // namespace shale::registry
