#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "common/status.h"

namespace praefect {

// Either a value of T or a non-OK Status. Accessing the value of an error is a
// programming error (asserted in debug builds).
//
// Kept as a Status plus an optional rather than a std::variant: GCC 12 at -O2
// reports a false -Wmaybe-uninitialized for the variant's inactive string.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  // REQUIRES: !status.ok()
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }

  // A reference for lvalues, so `const std::string& m = s.status().message()`
  // stays valid as long as `s`; a copy for temporaries, which would dangle.
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  Status status_;  // OK when value_ is set.
  std::optional<T> value_;
};

}  // namespace praefect
