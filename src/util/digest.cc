#include "util/digest.h"

#include <openssl/evp.h>

#include "util/fd.h"

namespace shale {

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<Digest> Digest::Parse(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256:";
  if (s.substr(0, kPrefix.size()) != kPrefix || !IsHex64(s.substr(kPrefix.size())))
    return Error(Errc::kInvalidArgument,
                 "invalid digest \"" + std::string(s) + "\": want sha256:<64 hex digits>");
  return FromHex(std::string(s.substr(kPrefix.size())));
}

struct Sha256::Impl {
  std::unique_ptr<EVP_MD_CTX, FnDeleter<EVP_MD_CTX_free>> ctx{EVP_MD_CTX_new()};
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, size_t n) { EVP_DigestUpdate(impl_->ctx.get(), data, n); }

Digest Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx.get(), md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string hex(len * 2, '0');
  for (unsigned i = 0; i < len; i++) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 15];
  }
  return Digest::FromHex(std::move(hex));
}

Digest Digest::Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

Digest ChainId(const Digest& parent_chain, const Digest& diff_id) {
  if (parent_chain.empty()) return diff_id;
  return Digest::Of(parent_chain.str() + " " + diff_id.str());
}

}  // namespace shale
