#include "runtime/cgroup/devices.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "util/fd.h"

namespace shale::runtime::cgroup {
namespace {

// Access bits of a rule's "rwm" string, as BPF_DEVCG_ACC_* (m=1, r=2, w=4). "" is all.
uint32_t AccessBits(const std::string& access) {
  if (access.empty()) return BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
  uint32_t bits = 0;
  for (char c : access) {
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
  }
  return bits;
}
constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

bool AllTypes(const oci::DeviceRule& r) { return r.type.empty() || r.type == "a"; }

// Instruction builders (the kernel's BPF_* macros from samples/bpf, as functions).
bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i;
  std::memset(&i, 0, sizeof(i));
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}
bpf_insn LoadCtxU32(uint8_t dst, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_1, off, 0);
}
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn JumpImm(uint8_t op, uint8_t dst, int32_t imm) {  // offset patched later
  return Insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

long Bpf(int cmd, union bpf_attr* attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

}  // namespace

Result<void> ValidateDeviceRules(const std::vector<oci::DeviceRule>& rules) {
  for (size_t i = 0; i < rules.size(); ++i) {
    const oci::DeviceRule& r = rules[i];
    std::string where = "linux.resources.devices[" + std::to_string(i) + "]";
    if (!(AllTypes(r) || r.type == "c" || r.type == "b"))
      return Error(Errc::kInvalidArgument,
                   where + ": type \"" + r.type + "\" is not one of a, b, c");
    if (r.access.find_first_not_of("rwm") != std::string::npos)
      return Error(Errc::kInvalidArgument,
                   where + ": access \"" + r.access + "\" may only hold r, w and m");
    if ((r.major && (*r.major < 0 || *r.major > 0xffffffffLL)) ||
        (r.minor && (*r.minor < 0 || *r.minor > 0xffffffffLL)))
      return Error(Errc::kInvalidArgument, where + ": major/minor out of range (omit for any)");
  }
  return Ok();
}

std::string DeviceRuleLine(const oci::DeviceRule& r) {
  std::string line = AllTypes(r) ? "a" : r.type;
  line += ' ';
  line += r.major ? std::to_string(*r.major) : "*";
  line += ':';
  line += r.minor ? std::to_string(*r.minor) : "*";
  line += ' ';
  line += r.access.empty() ? "rwm" : r.access;
  return line;
}

std::vector<bpf_insn> DeviceFilterProgram(const std::vector<oci::DeviceRule>& rules) {
  // r2 = device type, r3 = requested access, r4 = major, r5 = minor (bpf_cgroup_dev_ctx).
  std::vector<bpf_insn> p = {
      LoadCtxU32(BPF_REG_2, offsetof(bpf_cgroup_dev_ctx, access_type)),
      Alu32Imm(BPF_AND, BPF_REG_2, 0xffff),
      LoadCtxU32(BPF_REG_3, offsetof(bpf_cgroup_dev_ctx, access_type)),
      Alu32Imm(BPF_RSH, BPF_REG_3, 16),
      LoadCtxU32(BPF_REG_4, offsetof(bpf_cgroup_dev_ctx, major)),
      LoadCtxU32(BPF_REG_5, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  // Last rule first: the first block that matches returns its verdict.
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const oci::DeviceRule& r = *it;
    uint32_t access = AccessBits(r.access);
    std::vector<bpf_insn> block;
    if (!AllTypes(r))
      block.push_back(JumpImm(BPF_JNE, BPF_REG_2,
                              r.type == "c" ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
    if (access != kAllAccess) {
      block.push_back(Mov32Reg(BPF_REG_1, BPF_REG_3));
      if (r.allow) {
        // Not this rule if anything outside its access is asked for.
        block.push_back(Alu32Imm(BPF_AND, BPF_REG_1, static_cast<int32_t>(kAllAccess & ~access)));
        block.push_back(JumpImm(BPF_JNE, BPF_REG_1, 0));
      } else {
        // Not this rule if none of its access is asked for.
        block.push_back(Alu32Imm(BPF_AND, BPF_REG_1, static_cast<int32_t>(access)));
        block.push_back(JumpImm(BPF_JEQ, BPF_REG_1, 0));
      }
    }
    if (r.major) block.push_back(JumpImm(BPF_JNE, BPF_REG_4, static_cast<int32_t>(*r.major)));
    if (r.minor) block.push_back(JumpImm(BPF_JNE, BPF_REG_5, static_cast<int32_t>(*r.minor)));
    bool unconditional = block.empty();
    block.push_back(Mov64Imm(BPF_REG_0, r.allow ? 1 : 0));
    block.push_back(Exit());
    // Every conditional jump goes to the end of the block (the next rule).
    for (size_t i = 0; i < block.size(); ++i)
      if (BPF_CLASS(block[i].code) == BPF_JMP && BPF_OP(block[i].code) != BPF_EXIT)
        block[i].off = static_cast<int16_t>(block.size() - i - 1);
    p.insert(p.end(), block.begin(), block.end());
    if (unconditional) return p;  // earlier rules are unreachable
  }
  p.push_back(Mov64Imm(BPF_REG_0, 0));
  p.push_back(Exit());
  return p;
}

Result<void> AttachDeviceFilter(const std::string& dir, const std::vector<oci::DeviceRule>& rules) {
  TRY(ValidateDeviceRules(rules));
  std::vector<bpf_insn> insns = DeviceFilterProgram(rules);
  UniqueFd cg(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return Error::FromErrno(errno, "open cgroup " + dir);

  // Programs attached before (by an earlier Apply), detached once the new one is in.
  uint32_t old_ids[64];
  uint32_t old_count = 0;
  {
    union bpf_attr q;
    std::memset(&q, 0, sizeof(q));
    q.query.target_fd = static_cast<uint32_t>(cg.get());
    q.query.attach_type = BPF_CGROUP_DEVICE;
    q.query.prog_ids = reinterpret_cast<uint64_t>(old_ids);
    q.query.prog_cnt = 64;
    if (Bpf(BPF_PROG_QUERY, &q) == 0) old_count = q.query.prog_cnt;
  }

  static const char kLicense[] = "Apache-2.0";
  union bpf_attr load;
  std::memset(&load, 0, sizeof(load));
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(insns.data());
  load.insn_cnt = static_cast<uint32_t>(insns.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  load.expected_attach_type = BPF_CGROUP_DEVICE;
  UniqueFd prog(static_cast<int>(Bpf(BPF_PROG_LOAD, &load)));
  if (!prog) {
    int err = errno;
    // Again with the verifier's log, for the message.
    std::string log(16384, '\0');
    load.log_buf = reinterpret_cast<uint64_t>(log.data());
    load.log_size = static_cast<uint32_t>(log.size());
    load.log_level = 1;
    UniqueFd again(static_cast<int>(Bpf(BPF_PROG_LOAD, &load)));
    log.resize(strnlen(log.c_str(), log.size()));
    return Error::FromErrno(err, "load the device filter (BPF_PROG_TYPE_CGROUP_DEVICE) for " +
                                     dir + (log.empty() ? "" : "; verifier: " + log));
  }

  union bpf_attr att;
  std::memset(&att, 0, sizeof(att));
  att.target_fd = static_cast<uint32_t>(cg.get());
  att.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  att.attach_type = BPF_CGROUP_DEVICE;
  att.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &att) != 0)
    return Error::FromErrno(errno, "attach the device filter to cgroup " + dir);

  for (uint32_t i = 0; i < old_count && i < 64; ++i) {
    union bpf_attr get;
    std::memset(&get, 0, sizeof(get));
    get.prog_id = old_ids[i];
    UniqueFd old(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &get)));
    if (!old) continue;  // gone meanwhile
    union bpf_attr det;
    std::memset(&det, 0, sizeof(det));
    det.target_fd = static_cast<uint32_t>(cg.get());
    det.attach_bpf_fd = static_cast<uint32_t>(old.get());
    det.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &det) != 0 && errno != ENOENT)
      return Error::FromErrno(errno, "detach the previous device filter from cgroup " + dir);
  }
  return Ok();
}

}  // namespace shale::runtime::cgroup
