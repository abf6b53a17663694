// libcurl, loaded when the first registry client is made rather than when shale starts.
//
// Why: linking libcurl makes every shale process load libcurl.so.4 and the ~30 libraries it
// needs (GnuTLS, nghttp2, Kerberos, LDAP, libssh2, ...), relocate them and run their
// constructors: 6.4 ms of the 7.6 ms that `shale --version` took, paid twice by every
// `shale run` (its CVE-2019-5736 re-exec) though only pull, push, login and build's FROM
// speak HTTP. Debian ships no static archives for most of those libraries, so the cure is to
// open libcurl on first use. The headers still come from libcurl4-openssl-dev, so the
// signatures are checked by the compiler (each pointer has the type of the function it names).
#pragma once

#include <curl/curl.h>

#include "util/error.h"

namespace shale::registry {

struct CurlLibrary {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_reset) easy_reset;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

// The library, opened (and curl_global_init run) once per process; an error names the file
// and the package to install. Thread-safe.
Result<const CurlLibrary*> LoadCurl();

}  // namespace shale::registry
