// Registry authentication: WWW-Authenticate challenges and stored credentials.
//
// Credentials are kept in docker's config.json shape ({"auths":{"HOST[:PORT]":{"auth":
// base64("user:password")}}}). shale writes its own file (AuthFiles::own, by default
// ${XDG_CONFIG_HOME:-$HOME/.config}/shale/auth.json, or $SHALE_AUTH_FILE) with mode 0600 by
// an atomic rename, and reads, in order: its own file, podman's
// ${XDG_RUNTIME_DIR}/containers/auth.json and docker's ${DOCKER_CONFIG:-$HOME/.docker}/
// config.json. Credential helpers (credsStore) are not run.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace shale::registry {

// One challenge of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"` or
// `Basic realm="…"`. Scheme lower-cased; parameter names lower-cased, values unquoted.
struct Challenge {
  std::string scheme;  // "bearer", "basic"
  std::map<std::string, std::string> params;
  std::string Param(const std::string& k) const {
    auto it = params.find(k);
    return it == params.end() ? "" : it->second;
  }
};

// Parses RFC 7235 challenges (several may share one header). kInvalidArgument if malformed.
Result<std::vector<Challenge>> ParseChallenges(std::string_view header);

struct Credentials {
  std::string username;
  std::string password;
  bool empty() const { return username.empty() && password.empty(); }
};

std::string Base64Encode(std::string_view in);
// kInvalidArgument on bad input.
Result<std::string> Base64Decode(std::string_view in);

struct AuthFiles {
  std::string own;                  // written by login/logout
  std::vector<std::string> others;  // read only, after `own`
  // The defaults described above, from the environment.
  static AuthFiles Default();
};

// The credentials stored for `registry` ("host[:port]"; docker.io also matches docker's
// "https://index.docker.io/v1/" key). nullopt if none. kCorrupt naming the file if one of
// them is not JSON or holds a bad "auth" value.
Result<std::optional<Credentials>> LookupCredentials(const AuthFiles& files,
                                                     const std::string& registry);
// Saves into files.own (creating its directory 0700, the file 0600, atomic rename).
Result<void> StoreCredentials(const AuthFiles& files, const std::string& registry,
                              const Credentials& c);
// Removes from files.own; kNotFound if it held none for `registry`.
Result<void> RemoveCredentials(const AuthFiles& files, const std::string& registry);

}  // namespace shale::registry
