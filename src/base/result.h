// src/base/result.h: Result<T>, the return type of every fallible parser and
// setting reader in src/ (we build without exceptions in mind: errors are values).
//
// Member names follow std::expected (has_value, value, error), so this can
// become an alias of std::expected under C++23. Status = Result<void>.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace drepl {

// What the caller should do about an error (the retry policy). Why a dsync
// failed (no such user, noreplicate, ...) is a SyncErrorKind
// (sync-error.h), not an ErrorCode.
enum class ErrorCode : unsigned char {
  kTemp,         // transient: retry later (connect refused, dsync FAIL, lock timeout)
  kInvalid,      // malformed line or setting: log it; retrying the same input won't help
  kInternal,     // our own bug: log as error, keep running
};

// An error: a code and a one-line message carrying its full context, safe to
// log (never a password or a dsync state).
struct Error {
  ErrorCode code = ErrorCode::kInvalid;
  std::string message;
};

// Builds an Error; convertible to any Result<T>.
inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}
inline Error invalid(std::string message) {
  return Error{ErrorCode::kInvalid, std::move(message)};
}

// Either a value of type T or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // Precondition: has_value().
  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Precondition: !has_value().
  const Error& error() const { assert(!has_value()); return std::get<1>(v_); }
  Error& error() { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success (no value) or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  void value() const { assert(ok_); }
  const Error& error() const { assert(!ok_); return error_; }
  Error& error() { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

}  // namespace drepl
