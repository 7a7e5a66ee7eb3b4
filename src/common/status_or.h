#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/status.h"

namespace praefect {

// Either a value of T or a non-OK Status. Accessing the value of an error is a
// programming error (asserted in debug builds).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // REQUIRES: !status.ok()
  StatusOr(Status status) : rep_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(rep_).ok());
  }
  StatusOr(T value) : rep_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(rep_); }

  // A reference for lvalues, so `const std::string& m = s.status().message()`
  // stays valid as long as `s`; a copy for temporaries, which would dangle.
  const Status& status() const& {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(rep_);
  }
  Status status() && { return ok() ? Status::Ok() : std::get<Status>(std::move(rep_)); }

  const T& value() const& { return std::get<T>(rep_); }
  T& value() & { return std::get<T>(rep_); }
  T&& value() && { return std::get<T>(std::move(rep_)); }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> rep_;
};

}  // namespace praefect
