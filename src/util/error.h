// Errors as values: Error, Result<T>, TRY.
//
// Every fallible function at a module boundary returns Result<T>. Errors are made at the
// syscall, naming the syscall and the object ("openat2 overlay2/3f1c/diff: No such file or
// directory"), and callers add context on the way up with Wrap().
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace shale {

// Categories callers branch on. Never branch on message text.
enum class Errc {
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kCorrupt,
  kPermission,
  kUnsupported,
  kBusy,
  kIo,
  kNetwork,
  kUnauthorized,
  kCancelled,
  kInternal,
};

class Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}
  // "what: strerror(err)", with the category derived from errno.
  static Error FromErrno(int err, std::string_view what);

  Errc code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  // Prefixes context: "pull alpine: " + message.
  Error Wrap(std::string_view context) && {
    message_ = std::string(context) + ": " + message_;
    return std::move(*this);
  }

 private:
  Errc code_;
  int errno_ = 0;
  std::string message_;
};

Errc ErrcFromErrno(int err);

// Same surface as std::expected<T, Error>, plus implicit construction from Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(const T& v) : v_(std::in_place_index<0>, v) {}
  Result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}
  template <typename U,
            typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                        !std::is_same_v<std::decay_t<U>, Error> &&
                                        !std::is_same_v<std::decay_t<U>, Result<T>>>>
  Result(U&& u) : v_(std::in_place_index<0>, T(std::forward<U>(u))) {}
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  template <typename U>
  T value_or(U&& u) const& { return has_value() ? value() : T(std::forward<U>(u)); }

  Result Wrap(std::string_view context) && {
    if (!has_value()) return std::move(*this).error().Wrap(context);
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  Result() = default;
  Result(Error e) : err_(std::move(e)), has_err_(true) {}
  bool has_value() const { return !has_err_; }
  explicit operator bool() const { return has_value(); }
  void value() const {}
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }
  Result Wrap(std::string_view context) && {
    if (has_err_) return std::move(err_).Wrap(context);
    return {};
  }

 private:
  Error err_{Errc::kInternal, ""};
  bool has_err_ = false;
};

inline Result<void> Ok() { return {}; }

// Unwraps a Result or returns its error from the enclosing function (GNU statement expr).
#define TRY(expr)                                      \
  ({                                                   \
    auto&& shale_try_ = (expr);                        \
    if (!shale_try_) return std::move(shale_try_).error(); \
    std::move(shale_try_).value();                     \
  })

}  // namespace shale
