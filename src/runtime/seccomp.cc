#include "runtime/seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "runtime/channel.h"
#include "util/fd.h"

// Linux 5.19; older uapi headers lack the name.
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

namespace shale::runtime {
namespace {

using FilterCtx = std::unique_ptr<void, FnDeleter<seccomp_release>>;

Result<uint32_t> Action(const std::string& name, std::optional<uint32_t> ret,
                        const std::string& where) {
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret.value_or(EPERM));
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret.value_or(EPERM));
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") return SCMP_ACT_NOTIFY;
  return Error(Errc::kInvalidArgument,
               where + ": unsupported seccomp action \"" + name +
                   "\" (use SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _TRAP, _TRACE, _LOG, "
                   "_NOTIFY)");
}

Result<scmp_compare> Op(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return Error(Errc::kInvalidArgument, "linux.seccomp: unknown argument operator \"" + op + "\"");
}

// "SCMP_ARCH_X86_64" -> libseccomp's token. 0 if unknown.
uint32_t Arch(const std::string& name) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (name.rfind(kPrefix, 0) != 0) return 0;
  std::string lower = name.substr(kPrefix.size());
  for (char& c : lower) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return seccomp_arch_resolve_name(lower.c_str());
}

Result<unsigned int> Flag(const std::string& f) {
  if (f == "SECCOMP_FILTER_FLAG_LOG") return SECCOMP_FILTER_FLAG_LOG;
  if (f == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  if (f == "SECCOMP_FILTER_FLAG_TSYNC") return 0;  // single-threaded child: nothing to sync
  // Only changes how a notified syscall waits (killable once the agent received it).
  if (f == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") return SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  return Error(Errc::kInvalidArgument, "linux.seccomp.flags: unsupported flag \"" + f + "\"");
}

Result<void> AddRule(scmp_filter_ctx ctx, uint32_t action, int nr,
                     const std::vector<scmp_arg_cmp>& cmps, const std::string& name) {
  int r = seccomp_rule_add_array(ctx, action, nr, cmps.size(), cmps.empty() ? nullptr : cmps.data());
  // -EACCES: the rule's action is the default one (nothing to add).
  if (r == 0 || r == -EACCES) return Ok();
  return Error::FromErrno(-r, "seccomp rule for " + name);
}

}  // namespace

Result<SeccompProgram> CompileSeccomp(const oci::Seccomp& spec) {
  SeccompProgram prog;
  uint32_t def = TRY(Action(spec.default_action, spec.default_errno_ret, "linux.seccomp.defaultAction"));
  if (def == SCMP_ACT_NOTIFY)
    return Error(Errc::kInvalidArgument,
                 "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the "
                 "container's init would wait on its first syscall for an agent that has no fd "
                 "yet); notify the syscalls by name in linux.seccomp.syscalls");
  FilterCtx ctx(seccomp_init(def));
  if (!ctx) return Error(Errc::kInvalidArgument, "seccomp_init: invalid default action");
  // The child loads the filter itself, with the no_new_privs it chose.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  // A binary tree over syscall numbers instead of a linear list: +50 us here, but the
  // kernel's per-syscall action cache (built by running the filter for every number at load)
  // and every later syscall walk fewer instructions: load 80 instead of 230 us.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (const std::string& a : spec.architectures) {
    uint32_t arch = Arch(a);
    if (arch == 0)
      return Error(Errc::kInvalidArgument, "linux.seccomp.architectures: unknown " + a);
    int r = seccomp_arch_add(ctx.get(), arch);
    if (r != 0 && r != -EEXIST) return Error::FromErrno(-r, "seccomp: add architecture " + a);
  }
  for (const std::string& f : spec.flags) prog.flags |= TRY(Flag(f));

  for (size_t i = 0; i < spec.syscalls.size(); ++i) {
    const oci::SeccompSyscall& s = spec.syscalls[i];
    std::string where = "linux.seccomp.syscalls[" + std::to_string(i) + "]";
    uint32_t action = TRY(Action(s.action, s.errno_ret, where));
    if (action == SCMP_ACT_NOTIFY) {
      if (spec.listener_path.empty())
        return Error(Errc::kInvalidArgument,
                     where + ": SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the agent's "
                             "unix socket that receives the notify fd)");
      for (const std::string& name : s.names)
        if (name == "sendmsg")
          return Error(Errc::kInvalidArgument,
                       where + ": SCMP_ACT_NOTIFY on sendmsg: the container's init sends the "
                               "notify fd to the runtime with sendmsg, under the filter, before "
                               "any agent has it");
      prog.listener = true;
    }
    std::vector<scmp_arg_cmp> cmps;
    bool repeated_index = false;
    for (const oci::SeccompArg& a : s.args) {
      if (a.index > 5)
        return Error(Errc::kInvalidArgument, where + ": argument index " +
                                                 std::to_string(a.index) + " is above 5");
      for (const scmp_arg_cmp& c : cmps) repeated_index |= (c.arg == a.index);
      cmps.push_back({a.index, TRY(Op(a.op)), a.value, a.value_two});
    }
    for (const std::string& name : s.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skip
      if (!repeated_index) {
        TRY(AddRule(ctx.get(), action, nr, cmps, name));
      } else {
        // libseccomp takes one comparison per argument: as runc, one rule per comparison.
        for (const scmp_arg_cmp& c : cmps) TRY(AddRule(ctx.get(), action, nr, {c}, name));
      }
    }
  }

  // libseccomp 2.5 exports only to an fd.
  UniqueFd mem(memfd_create("shale-seccomp", MFD_CLOEXEC));
  if (!mem) return Error::FromErrno(errno, "memfd_create for the seccomp filter");
  if (int r = seccomp_export_bpf(ctx.get(), mem.get()); r != 0)
    return Error::FromErrno(-r, "seccomp_export_bpf");
  off_t size = lseek(mem.get(), 0, SEEK_CUR);
  if (size <= 0 || size % sizeof(struct sock_filter) != 0)
    return Error(Errc::kInternal, "seccomp_export_bpf wrote " + std::to_string(size) + " bytes");
  prog.insns.resize(size / sizeof(struct sock_filter));
  if (pread(mem.get(), prog.insns.data(), size, 0) != size)
    return Error::FromErrno(errno, "read back the seccomp filter");
  if (prog.listener) {
    prog.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  } else {
    // The kernel takes it only with a listener; without one it would change nothing.
    prog.flags &= ~static_cast<unsigned int>(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
  }
  return prog;
}

std::string SeccompCacheKey(const oci::Seccomp& spec) {
  std::string k;
  auto put = [&k](std::string_view v) {
    k += std::to_string(v.size());
    k += ':';
    k += v;
  };
  auto put_opt = [&](std::optional<uint32_t> v) { put(v ? std::to_string(*v) : "-"); };
  const scmp_version* lib = seccomp_version();
  put(lib ? std::to_string(lib->major) + "." + std::to_string(lib->minor) + "." +
                std::to_string(lib->micro)
          : "?");
  // Not seccomp_api_get(): the API level follows from these two, and asking for it probes
  // the kernel with nine seccomp(2) calls in every process.
  struct utsname u;
  put(uname(&u) == 0 ? std::string(u.release) + " " + u.machine : "?");
  put(spec.default_action);
  put_opt(spec.default_errno_ret);
  put(std::to_string(spec.architectures.size()));
  for (const std::string& a : spec.architectures) put(a);
  put(std::to_string(spec.flags.size()));
  for (const std::string& f : spec.flags) put(f);
  put(spec.listener_path.empty() ? "" : "listener");
  put(std::to_string(spec.syscalls.size()));
  for (const oci::SeccompSyscall& sc : spec.syscalls) {
    put(sc.action);
    put_opt(sc.errno_ret);
    put(std::to_string(sc.names.size()));
    for (const std::string& n : sc.names) put(n);
    put(std::to_string(sc.args.size()));
    for (const oci::SeccompArg& a : sc.args)
      put(std::to_string(a.index) + " " + std::to_string(a.value) + " " +
          std::to_string(a.value_two) + " " + a.op);
  }
  return k;
}

Result<SeccompProgram> CompileSeccompCached(const oci::Seccomp& spec, SeccompCache* cache) {
  if (!cache) return CompileSeccomp(spec);
  std::string key = SeccompCacheKey(spec);
  if (std::optional<SeccompProgram> hit = cache->Get(key)) return std::move(*hit);
  SeccompProgram prog = TRY(CompileSeccomp(spec));
  if (!prog.empty()) cache->Put(key, prog);
  return prog;
}

std::vector<std::string> KnownSeccompFlags() {
  return {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
          "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
}

std::vector<std::string> SupportedSeccompFlags() {
  std::vector<std::string> out;
  for (const std::string& name : KnownSeccompFlags()) {
    auto f = Flag(name);
    if (!f) continue;
    // TSYNC maps to 0 (nothing to sync), always fine. Otherwise a null filter with a flag
    // the kernel knows fails EFAULT (it got as far as reading the program), one it does not
    // know EINVAL; nothing is installed either way.
    // WAIT_KILLABLE_RECV is taken only with NEW_LISTENER.
    unsigned int flags = *f;
    if (flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (flags == 0 || (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr) < 0 &&
                       errno == EFAULT))
      out.push_back(name);
  }
  return out;
}

Result<UniqueFd> LoadSeccomp(const SeccompProgram& prog) {
  if (prog.empty()) return UniqueFd();
  struct sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.insns.size());
  fprog.filter = const_cast<struct sock_filter*>(prog.insns.data());
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog.flags, &fprog);
  if (r < 0) return Error::FromErrno(errno, "load the seccomp filter");
  // With NEW_LISTENER the kernel returns the notify fd (O_CLOEXEC), else 0.
  if (prog.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) return UniqueFd(static_cast<int>(r));
  return UniqueFd();
}

nlohmann::json ContainerProcessState(pid_t pid, const std::string& metadata,
                                     const nlohmann::json& state) {
  nlohmann::json j = {{"ociVersion", state.value("ociVersion", "1.1.0")},
                      {"fds", {"seccompFd"}},
                      {"pid", pid},
                      {"state", state}};
  if (!metadata.empty()) j["metadata"] = metadata;
  return j;
}

Result<void> SendToSeccompListener(const std::string& path, const nlohmann::json& process_state,
                                   int seccomp_fd) {
  std::string what = "seccomp listener linux.seccomp.listenerPath " + path;
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return Error(Errc::kInvalidArgument,
                 what + ": a unix socket path must be 1 to " +
                     std::to_string(sizeof(addr.sun_path) - 1) + " bytes long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error::FromErrno(errno, "socket for the " + what);
  int r;
  do {
    r = ::connect(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  } while (r != 0 && errno == EINTR);
  if (r != 0) return Error::FromErrno(errno, "connect to the " + what);
  // One sendmsg with the fd (the spec allows several, the fds in the first); a blocking
  // stream socket takes the whole message.
  std::string data = process_state.dump();
  TRY(SendFdOn(sock.get(), seccomp_fd, data.data(), data.size(), "to the " + what));
  return Ok();  // `sock` closes: one state per connection, never reused
}

}  // namespace shale::runtime
