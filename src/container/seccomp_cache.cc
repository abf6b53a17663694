#include "container/seccomp_cache.h"

#include <linux/filter.h>

#include <cstdint>
#include <cstring>

#include "util/digest.h"
#include "util/fs.h"

namespace shale::container {
namespace {

// The file: a header, then the instructions as the kernel takes them.
struct Header {
  char magic[8];  // "shalebpf"
  uint32_t flags;
  uint32_t listener;
  uint32_t count;
  uint32_t reserved;
};
constexpr char kMagic[8] = {'s', 'h', 'a', 'l', 'e', 'b', 'p', 'f'};

}  // namespace

std::string SeccompCacheDir::PathOf(const std::string& key) const {
  return dir_ + "/" + Digest::Of(key).hex() + ".bpf";
}

std::optional<runtime::SeccompProgram> SeccompCacheDir::Get(const std::string& key) {
  auto data = ReadFile(PathOf(key));
  if (!data || data->size() < sizeof(Header)) return std::nullopt;
  Header h;
  memcpy(&h, data->data(), sizeof h);
  if (memcmp(h.magic, kMagic, sizeof h.magic) != 0 || h.count == 0 || h.count > BPF_MAXINSNS ||
      data->size() != sizeof h + h.count * sizeof(struct sock_filter))
    return std::nullopt;
  runtime::SeccompProgram prog;
  prog.flags = h.flags;
  prog.listener = h.listener != 0;
  prog.insns.resize(h.count);
  memcpy(prog.insns.data(), data->data() + sizeof h, h.count * sizeof(struct sock_filter));
  return prog;
}

void SeccompCacheDir::Put(const std::string& key, const runtime::SeccompProgram& prog) {
  Header h{};
  memcpy(h.magic, kMagic, sizeof h.magic);
  h.flags = prog.flags;
  h.listener = prog.listener ? 1 : 0;
  h.count = static_cast<uint32_t>(prog.insns.size());
  std::string data(reinterpret_cast<const char*>(&h), sizeof h);
  data.append(reinterpret_cast<const char*>(prog.insns.data()),
              prog.insns.size() * sizeof(struct sock_filter));
  if (MakeDirsAbs(dir_, 0700)) (void)WriteFileReplace(PathOf(key), data, 0600);
}

}  // namespace shale::container
