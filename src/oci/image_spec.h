// OCI image-spec and Docker schema2 data: media types, descriptors, manifests, indexes.
// Data only (no storage); JSON through nlohmann. Decoders turn JSON errors into
// kInvalidArgument naming the document.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/digest.h"
#include "util/error.h"

namespace shale::oci {

inline constexpr std::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kMediaTypeOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kMediaTypeOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeDockerLayer =
    "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";
inline constexpr std::string_view kAnnotationContainerdName = "io.containerd.image.name";

// The OCI equivalent of a layer media type (docker's become OCI's), "" if not a layer.
std::string OciLayerMediaType(std::string_view media_type);
bool IsIndexMediaType(std::string_view media_type);

struct Platform {
  std::string architecture;
  std::string os;
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  Platform platform;  // only in indexes
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct Index {
  std::vector<Descriptor> manifests;
};

Result<Descriptor> DescriptorFromJson(const nlohmann::json& j, std::string_view what);
nlohmann::json DescriptorToJson(const Descriptor& d);
// Manifests and indexes from their bytes; `what` names the document in errors.
Result<Manifest> ParseManifest(std::string_view bytes, std::string_view what);
Result<Index> ParseIndex(std::string_view bytes, std::string_view what);
std::string ManifestToJson(const Manifest& m);
std::string IndexToJson(const Index& i);

// Parses JSON, turning exceptions into kInvalidArgument "<what>: <reason>".
Result<nlohmann::json> ParseJson(std::string_view bytes, std::string_view what);

}  // namespace shale::oci
