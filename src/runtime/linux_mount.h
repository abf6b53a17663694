// mount(2) declarations. `#include <sys/mount.h>` would find src/sys/mount.h (shale's own
// header, since src/ is on the include path), so take the flags from the kernel header and
// declare glibc's two functions here.
#pragma once

#include <linux/mount.h>

#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif

extern "C" {
int mount(const char* source, const char* target, const char* fstype, unsigned long flags,
          const void* data) noexcept;
int umount2(const char* target, int flags) noexcept;
}
