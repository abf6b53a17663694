// Image references ("busybox", "docker.io/library/busybox:1.36", "localhost/x@sha256:…"),
// parsed and normalised as Docker's distribution/reference does. Data only.
#pragma once

#include <string>
#include <string_view>

#include "util/error.h"

namespace shale::oci {

struct Reference {
  std::string domain;  // "docker.io", "localhost", "quay.io:443"
  std::string path;    // "library/busybox"
  std::string tag;     // "latest" unless a digest was given without a tag
  std::string digest;  // "sha256:…" or ""

  // "docker.io/library/busybox"
  std::string FullName() const { return domain + "/" + path; }
  // "busybox" for docker.io/library/busybox, "quay.io/x/y" otherwise (Docker's FamiliarName).
  std::string FamiliarName() const;
  // "busybox:latest", "busybox@sha256:…" (the key Docker's repositories.json uses).
  std::string FamiliarString() const;
  // "docker.io/library/busybox:latest" (containerd's io.containerd.image.name).
  std::string FullString() const;
};

// Parses and normalises: no domain means docker.io; a single docker.io path component gets
// "library/"; no tag and no digest means ":latest". kInvalidArgument for malformed names
// (upper case repository, empty components, bad tag), naming the reference.
Result<Reference> ParseReference(std::string_view s);

// True if `s` could be an image id or id prefix ("sha256:" optional, 1-64 lower hex).
bool LooksLikeIdPrefix(std::string_view s);

}  // namespace shale::oci
