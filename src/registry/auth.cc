#include "registry/auth.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "util/fs.h"

namespace shale::registry {
namespace {

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

// docker keeps Docker Hub under its v1 URL.
std::vector<std::string> KeysFor(const std::string& registry) {
  std::vector<std::string> keys = {registry, "https://" + registry, "http://" + registry};
  if (registry == "docker.io" || registry == "index.docker.io" ||
      registry == "registry-1.docker.io")
    keys.push_back("https://index.docker.io/v1/");
  return keys;
}

Result<nlohmann::json> LoadJson(const std::string& path, bool* exists) {
  auto bytes = ReadFile(path);
  if (!bytes) {
    *exists = false;
    if (bytes.error().code() == Errc::kNotFound) return nlohmann::json::object();
    return std::move(bytes).error();
  }
  *exists = true;
  if (bytes->empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(*bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(Errc::kCorrupt, path + ": not a JSON object; fix or remove the file");
  return j;
}

}  // namespace

Result<std::vector<Challenge>> ParseChallenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto bad = [&](std::string_view why) {
    return Error(Errc::kInvalidArgument,
                 "WWW-Authenticate \"" + std::string(h) + "\": " + std::string(why));
  };
  auto token = [&] {
    size_t s = i;
    while (i < h.size() && IsTokenChar(h[i])) ++i;
    return std::string(h.substr(s, i - s));
  };
  skip_ws();
  while (i < h.size()) {
    Challenge c;
    c.scheme = Lower(token());
    if (c.scheme.empty()) return bad("expected an auth scheme");
    skip_ws();
    // auth-params: name=value or name="quoted", separated by commas. A name followed by
    // something other than '=' starts the next challenge.
    while (i < h.size()) {
      size_t save = i;
      std::string name = Lower(token());
      skip_ws();
      if (name.empty() || i >= h.size() || h[i] != '=') {
        i = save;
        break;
      }
      ++i;
      skip_ws();
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        bool closed = false;
        while (i < h.size()) {
          char ch = h[i++];
          if (ch == '\\' && i < h.size()) {
            value += h[i++];
          } else if (ch == '"') {
            closed = true;
            break;
          } else {
            value += ch;
          }
        }
        if (!closed) return bad("unterminated quoted value");
      } else {
        value = token();
      }
      c.params[name] = value;
      skip_ws();
      if (i < h.size() && h[i] == ',') {
        ++i;
        skip_ws();
      } else {
        break;
      }
    }
    out.push_back(std::move(c));
    skip_ws();
    if (i < h.size() && h[i] == ',') {
      ++i;
      skip_ws();
    } else if (i < h.size() && !IsTokenChar(h[i])) {
      return bad("unexpected character");
    }
  }
  if (out.empty()) return bad("empty");
  return out;
}

std::string Base64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view in) {
  std::string s(in);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.size() % 4 != 0) return Error(Errc::kInvalidArgument, "base64: bad length");
  std::string out(s.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()),
                          static_cast<int>(s.size()));
  if (n < 0) return Error(Errc::kInvalidArgument, "base64: bad character");
  // EVP_DecodeBlock counts padding as zero bytes.
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

AuthFiles AuthFiles::Default() {
  AuthFiles f;
  std::string home = Env("HOME");
  if (home.empty()) home = "/root";
  if (!Env("SHALE_AUTH_FILE").empty()) {
    f.own = Env("SHALE_AUTH_FILE");
  } else {
    std::string cfg = Env("XDG_CONFIG_HOME");
    f.own = (cfg.empty() ? home + "/.config" : cfg) + "/shale/auth.json";
  }
  if (!Env("REGISTRY_AUTH_FILE").empty()) f.others.push_back(Env("REGISTRY_AUTH_FILE"));
  std::string run = Env("XDG_RUNTIME_DIR");
  f.others.push_back((run.empty() ? "/run/user/" + std::to_string(getuid()) : run) +
                     "/containers/auth.json");
  if (getuid() == 0) f.others.push_back("/run/containers/0/auth.json");
  std::string docker = Env("DOCKER_CONFIG");
  f.others.push_back((docker.empty() ? home + "/.docker" : docker) + "/config.json");
  return f;
}

Result<std::optional<Credentials>> LookupCredentials(const AuthFiles& files,
                                                     const std::string& registry) {
  std::vector<std::string> all = {files.own};
  all.insert(all.end(), files.others.begin(), files.others.end());
  for (const auto& path : all) {
    if (path.empty()) continue;
    bool exists;
    nlohmann::json j = TRY(LoadJson(path, &exists));
    if (!exists || !j.contains("auths") || !j["auths"].is_object()) continue;
    for (const auto& key : KeysFor(registry)) {
      if (!j["auths"].contains(key)) continue;
      const auto& e = j["auths"][key];
      if (!e.is_object() || !e.contains("auth") || !e["auth"].is_string()) continue;
      std::string plain = TRY(Base64Decode(e["auth"].get<std::string>())
                                  .Wrap(path + ": auths." + key + ".auth"));
      size_t colon = plain.find(':');
      if (colon == std::string::npos)
        return Error(Errc::kCorrupt, path + ": auths." + key + ".auth is not user:password");
      return std::optional<Credentials>(Credentials{plain.substr(0, colon), plain.substr(colon + 1)});
    }
  }
  return std::optional<Credentials>();
}

Result<void> StoreCredentials(const AuthFiles& files, const std::string& registry,
                              const Credentials& c) {
  bool exists;
  nlohmann::json j = TRY(LoadJson(files.own, &exists));
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = nlohmann::json::object();
  j["auths"][registry] = {{"auth", Base64Encode(c.username + ":" + c.password)}};
  TRY(MakeDirsAbs(Dirname(files.own), 0700));
  return WriteFileAtomic(files.own, j.dump(1, '\t') + "\n", 0600);
}

Result<void> RemoveCredentials(const AuthFiles& files, const std::string& registry) {
  bool exists;
  nlohmann::json j = TRY(LoadJson(files.own, &exists));
  bool found = false;
  if (j.contains("auths") && j["auths"].is_object())
    for (const auto& key : KeysFor(registry)) found |= j["auths"].erase(key) > 0;
  if (!found)
    return Error(Errc::kNotFound, "not logged in to " + registry + " (" + files.own + ")");
  return WriteFileAtomic(files.own, j.dump(1, '\t') + "\n", 0600);
}

}  // namespace shale::registry
