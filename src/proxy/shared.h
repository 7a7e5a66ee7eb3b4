#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "proxy/director.h"
#include "proxy/options.h"
#include "proxy/proxy.h"

namespace praefect::proxy {

// What every call of a Proxy shares: the Director and the counters. Owned
// jointly by the Proxy and its calls, so counters stay valid until the last
// call is gone. Thread-safe.
struct Proxy::Shared {
  Shared(Director* d, const Options& o)
      : director(d), max_message_bytes(o.max_message_bytes), max_message_hint(o.max_message_hint) {}

  // A message of `bytes` is now held by the proxy (read from one side, not
  // yet written to the other).
  void Hold(int64_t bytes) {
    RaiseTo(&max_messages_buffered, messages_buffered.fetch_add(1, std::memory_order_relaxed) + 1);
    RaiseTo(&max_bytes_buffered, bytes_buffered.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  }
  void Release(int64_t bytes) {
    messages_buffered.fetch_sub(1, std::memory_order_relaxed);
    bytes_buffered.fetch_sub(bytes, std::memory_order_relaxed);
  }

  Director* const director;
  const int64_t max_message_bytes;  // -1: no limit.
  const std::string max_message_hint;
  std::atomic<int64_t> calls_started{0};
  std::atomic<int64_t> calls_active{0};
  std::atomic<int64_t> messages_buffered{0};
  std::atomic<int64_t> bytes_buffered{0};
  std::atomic<int64_t> max_messages_buffered{0};
  std::atomic<int64_t> max_bytes_buffered{0};

 private:
  static void RaiseTo(std::atomic<int64_t>* max, int64_t value) {
    int64_t seen = max->load(std::memory_order_relaxed);
    while (value > seen && !max->compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }
};

}  // namespace praefect::proxy
