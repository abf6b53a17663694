#include "registry/curl_library.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace shale::registry {

namespace {

// The soname of libcurl's ABI 4 (every libcurl since 7.16); Debian's libcurl4 package.
constexpr const char* kSoname = "libcurl.so.4";

struct Loaded {
  CurlLibrary lib{};
  std::string error;  // empty once loaded
};

template <typename F>
bool Bind(void* handle, const char* name, F* out, std::string* error) {
  void* sym = dlsym(handle, name);
  if (!sym) {
    *error = std::string(kSoname) + " has no " + name + " (a libcurl older than 7.73?)";
    return false;
  }
  *out = reinterpret_cast<F>(sym);
  return true;
}

Loaded Open() {
  Loaded l;
  // RTLD_LOCAL: its OpenSSL and zlib stay apart from the static copies linked into shale.
  void* h = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    l.error = std::string("cannot load ") + kSoname + " (" + (why ? why : "not found") +
              "): registry commands need libcurl; install Debian's libcurl4 package";
    return l;
  }
  CurlLibrary& c = l.lib;
  std::string& e = l.error;
  bool ok = Bind(h, "curl_global_init", &c.global_init, &e) &&
            Bind(h, "curl_easy_init", &c.easy_init, &e) &&
            Bind(h, "curl_easy_cleanup", &c.easy_cleanup, &e) &&
            Bind(h, "curl_easy_reset", &c.easy_reset, &e) &&
            Bind(h, "curl_easy_setopt", &c.easy_setopt, &e) &&
            Bind(h, "curl_easy_getinfo", &c.easy_getinfo, &e) &&
            Bind(h, "curl_easy_perform", &c.easy_perform, &e) &&
            Bind(h, "curl_easy_strerror", &c.easy_strerror, &e) &&
            Bind(h, "curl_slist_append", &c.slist_append, &e) &&
            Bind(h, "curl_slist_free_all", &c.slist_free_all, &e);
  if (!ok) return l;  // the handle stays open: harmless, and dlclose of libcurl is not safe
  if (CURLcode rc = c.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
    e = std::string("curl_global_init failed: ") + c.easy_strerror(rc);
  return l;
}

}  // namespace

Result<const CurlLibrary*> LoadCurl() {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = Open(); });
  if (!loaded.error.empty()) return Error(Errc::kUnsupported, loaded.error);
  return &loaded.lib;
}

}  // namespace shale::registry
