// Content digests ("sha256:<64 hex>") and a streaming sha256 over OpenSSL's libcrypto.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "util/error.h"

namespace shale {

class Digest {
 public:
  Digest() = default;
  // kInvalidArgument unless "sha256:" followed by 64 lowercase hex digits.
  static Result<Digest> Parse(std::string_view s);
  static Digest FromHex(std::string hex) { Digest d; d.hex_ = std::move(hex); return d; }
  // sha256 of data.
  static Digest Of(std::string_view data);

  const std::string& hex() const { return hex_; }
  std::string str() const { return "sha256:" + hex_; }
  std::string Short() const { return hex_.substr(0, 12); }
  bool empty() const { return hex_.empty(); }
  bool operator==(const Digest& o) const { return hex_ == o.hex_; }
  bool operator!=(const Digest& o) const { return hex_ != o.hex_; }
  bool operator<(const Digest& o) const { return hex_ < o.hex_; }

 private:
  std::string hex_;
};

bool IsHex64(std::string_view s);

// Streaming sha256. Move-only.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Finishes; the object may not be updated afterwards.
  Digest Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// chainID(L1) = diffID(L1); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)).
Digest ChainId(const Digest& parent_chain, const Digest& diff_id);

}  // namespace shale
