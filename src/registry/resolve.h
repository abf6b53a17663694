// Choosing an image from an index / manifest list by platform (pure logic).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "oci/image_spec.h"
#include "util/error.h"

namespace shale::registry {

// "linux/amd64", "linux/arm64/v8", "linux/arm/v7". kInvalidArgument naming the text.
Result<oci::Platform> ParsePlatform(std::string_view s);
// The platform shale runs on (os "linux", architecture as GOARCH spells it, arm variant).
oci::Platform HostPlatform();
std::string PlatformString(const oci::Platform& p);

// The manifest of `index` for `want`, as containerd's platforms.Only matcher picks: os and
// architecture must match; a wanted variant must match (arm64 "v8" and "" are the same; an
// armv7 host also runs v6 and v5 images, preferring the highest). Entries without a
// platform are skipped unless the index has only one. nullopt if none fits.
std::optional<oci::Descriptor> SelectManifest(const oci::Index& index, const oci::Platform& want);

}  // namespace shale::registry
