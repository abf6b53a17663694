#include "oci/image_spec.h"

namespace shale::oci {

std::string OciLayerMediaType(std::string_view mt) {
  if (mt == kMediaTypeDockerLayer || mt == kMediaTypeOciLayer) return std::string(kMediaTypeOciLayer);
  if (mt == kMediaTypeDockerLayerGzip || mt == kMediaTypeOciLayerGzip)
    return std::string(kMediaTypeOciLayerGzip);
  if (mt == kMediaTypeOciLayerZstd) return std::string(kMediaTypeOciLayerZstd);
  // Non-distributable variants are still layers.
  if (mt.find("image.layer") != std::string_view::npos ||
      mt.find("rootfs.diff") != std::string_view::npos) {
    if (mt.find("gzip") != std::string_view::npos) return std::string(kMediaTypeOciLayerGzip);
    if (mt.find("zstd") != std::string_view::npos) return std::string(kMediaTypeOciLayerZstd);
    return std::string(kMediaTypeOciLayer);
  }
  return "";
}

bool IsIndexMediaType(std::string_view mt) {
  return mt == kMediaTypeOciIndex || mt == kMediaTypeDockerManifestList;
}

Result<nlohmann::json> ParseJson(std::string_view bytes, std::string_view what) {
  try {
    return nlohmann::json::parse(bytes);
  } catch (const std::exception& e) {
    return Error(Errc::kInvalidArgument, std::string(what) + ": invalid JSON: " + e.what());
  }
}

Result<Descriptor> DescriptorFromJson(const nlohmann::json& j, std::string_view what) {
  if (!j.is_object()) return Error(Errc::kInvalidArgument, std::string(what) + ": not an object");
  Descriptor d;
  try {
    d.media_type = j.value("mediaType", "");
    d.digest = TRY(Digest::Parse(j.value("digest", "")).Wrap(std::string(what)));
    d.size = j.value("size", int64_t{0});
    if (j.contains("annotations") && j["annotations"].is_object())
      for (auto& [k, v] : j["annotations"].items())
        if (v.is_string()) d.annotations[k] = v.get<std::string>();
    if (j.contains("platform") && j["platform"].is_object()) {
      const auto& p = j["platform"];
      d.platform.architecture = p.value("architecture", "");
      d.platform.os = p.value("os", "");
      d.platform.variant = p.value("variant", "");
    }
  } catch (const std::exception& e) {
    return Error(Errc::kInvalidArgument, std::string(what) + ": " + e.what());
  }
  return d;
}

nlohmann::json DescriptorToJson(const Descriptor& d) {
  nlohmann::json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (!d.platform.os.empty()) {
    j["platform"] = {{"architecture", d.platform.architecture}, {"os", d.platform.os}};
    if (!d.platform.variant.empty()) j["platform"]["variant"] = d.platform.variant;
  }
  return j;
}

Result<Manifest> ParseManifest(std::string_view bytes, std::string_view what) {
  nlohmann::json j = TRY(ParseJson(bytes, what));
  if (!j.is_object() || !j.contains("config") || !j.contains("layers") ||
      !j["layers"].is_array())
    return Error(Errc::kInvalidArgument, std::string(what) + ": not an image manifest");
  Manifest m;
  m.media_type = j.value("mediaType", std::string(kMediaTypeOciManifest));
  m.config = TRY(DescriptorFromJson(j["config"], std::string(what) + " config"));
  for (const auto& l : j["layers"])
    m.layers.push_back(TRY(DescriptorFromJson(l, std::string(what) + " layer")));
  return m;
}

Result<Index> ParseIndex(std::string_view bytes, std::string_view what) {
  nlohmann::json j = TRY(ParseJson(bytes, what));
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array())
    return Error(Errc::kInvalidArgument, std::string(what) + ": not an image index");
  Index idx;
  for (const auto& m : j["manifests"])
    idx.manifests.push_back(TRY(DescriptorFromJson(m, std::string(what) + " manifest")));
  return idx;
}

std::string ManifestToJson(const Manifest& m) {
  nlohmann::json j = {{"schemaVersion", 2},
                      {"mediaType", m.media_type.empty() ? std::string(kMediaTypeOciManifest)
                                                         : m.media_type},
                      {"config", DescriptorToJson(m.config)},
                      {"layers", nlohmann::json::array()}};
  for (const auto& l : m.layers) j["layers"].push_back(DescriptorToJson(l));
  return j.dump();
}

std::string IndexToJson(const Index& i) {
  nlohmann::json j = {{"schemaVersion", 2},
                      {"mediaType", std::string(kMediaTypeOciIndex)},
                      {"manifests", nlohmann::json::array()}};
  for (const auto& m : i.manifests) j["manifests"].push_back(DescriptorToJson(m));
  return j.dump();
}

}  // namespace shale::oci
