// Device access control for a container's cgroup (linux.resources.devices).
//
// cgroup v1: the rules become lines written to devices.deny / devices.allow in order.
// cgroup v2 has no devices files: the rules are compiled into a BPF_PROG_TYPE_CGROUP_DEVICE
// program attached to the cgroup (BPF_F_ALLOW_MULTI), which the kernel runs on every mknod
// and open of a device node by a task in it.
//
// Semantics (both versions): rules apply in order and, for a given access, the last rule
// that matches decides. An allow rule matches when it covers the whole request (device type,
// major, minor, and every requested access); a deny rule matches when it covers the device
// and any requested access. No rule matching: denied (v2) / the parent's rules (v1: the
// list should start with a deny-all, as DefaultDeviceRules does).
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "oci/runtime_spec.h"
#include "util/error.h"

namespace shale::runtime::cgroup {

// kInvalidArgument naming the bad rule: a type other than "a", "b", "c" (or empty), access
// with letters other than r, w, m, or a negative major/minor.
Result<void> ValidateDeviceRules(const std::vector<oci::DeviceRule>& rules);

// The v1 devices.allow/devices.deny line of a rule: "c 1:3 rwm", "a *:* rwm", "b *:* m".
std::string DeviceRuleLine(const oci::DeviceRule& rule);

// The eBPF program for `rules` (input: struct bpf_cgroup_dev_ctx in r1; output r0: 1 allow,
// 0 deny). Rules are tested last to first; an unconditional rule ends the program.
std::vector<struct bpf_insn> DeviceFilterProgram(const std::vector<oci::DeviceRule>& rules);

// Loads the program for `rules` and attaches it to the cgroup directory `dir` with
// BPF_F_ALLOW_MULTI, then detaches the device programs attached there before (a re-apply
// replaces, never narrows by stacking). Error names `dir` and carries the verifier log.
Result<void> AttachDeviceFilter(const std::string& dir, const std::vector<oci::DeviceRule>& rules);

}  // namespace shale::runtime::cgroup
