// Mounts as data (MountSpec) and their owner (ScopedMount).
#pragma once

#include <string>
#include <vector>

#include "util/error.h"

namespace shale::sys {

// What to mount. Computing one never touches the system.
struct MountSpec {
  std::string type;    // "overlay", "bind", "proc", "tmpfs", ...
  std::string source;
  std::string target;  // absolute, or relative to a rootfs inside a runtime plan
  std::vector<std::string> options;  // fstab-style: "ro", "nosuid", "lowerdir=...", "rbind"...
};

// Overlay mount description. `lowers` are absolute diff dirs, top first. `short_lowers` are
// the same layers as paths relative to `short_base` (overlay2/l/<id>), used for the classic
// mount(2) data string so that long stacks still fit one page.
struct OverlaySpec {
  std::vector<std::string> lowers;
  std::vector<std::string> short_lowers;
  std::string short_base;
  std::string upper;  // empty: read-only overlay
  std::string work;
  std::vector<std::string> extra_options;  // e.g. "index=off"
};

// Mounts an overlay at target: the new mount API (fsopen, one "lowerdir+" per layer, Linux
// 6.8+) where the kernel has it, otherwise mount(2) with the short-name string (chdir to
// short_base first) when the absolute string does not fit one page.
Result<void> MountOverlay(const OverlaySpec& spec, const std::string& target);

// mount(2) of a MountSpec (bind, proc, tmpfs...). Options are translated to flags + data.
Result<void> Mount(const MountSpec& spec);
// umount2; MNT_DETACH if `lazy`. kNotFound-free: EINVAL (not mounted) is success.
Result<void> Unmount(const std::string& target, bool lazy = false);
// True if `path` is a mount point (its mount id differs from its parent's).
bool IsMountPoint(const std::string& path);

// Unmounts in the destructor (MNT_DETACH) unless Release()d.
class ScopedMount {
 public:
  ScopedMount() = default;
  explicit ScopedMount(std::string target) : target_(std::move(target)) {}
  ScopedMount(ScopedMount&& o) noexcept : target_(std::exchange(o.target_, "")) {}
  ScopedMount& operator=(ScopedMount&& o) noexcept;
  ~ScopedMount();
  void Release() { target_.clear(); }
  const std::string& target() const { return target_; }

 private:
  std::string target_;
};

}  // namespace shale::sys
