#include "http2/nghttp2_memory.h"

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace praefect::http2 {
namespace {

#if defined(__SANITIZE_ADDRESS__)
#define PRAEFECT_PLAIN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PRAEFECT_PLAIN_MALLOC 1
#endif
#endif

#ifndef PRAEFECT_PLAIN_MALLOC
// nghttp2's own allocations (stream and frame objects, header-table
// entries: about 18 per proxied call) come from per-thread free lists of
// power-of-two pieces, 64 B to 8 KiB, at most kMemKeep of each kept; larger
// ones from malloc. A session lives on one loop, but a piece may be freed on
// another thread than the one that made it: it then joins that thread's list.
constexpr size_t kMemHeader = 16;  // the piece's class, or its size when large
constexpr int kMemClasses = 8;
constexpr size_t kMemSmallest = 64;
constexpr size_t kMemKeep = 128;
constexpr uint64_t kMemLarge = UINT64_MAX;

struct MemCache {
  struct Piece {
    Piece* next;
  };
  Piece* head[kMemClasses] = {};
  size_t count[kMemClasses] = {};
  ~MemCache();
};
thread_local bool mem_cache_gone = false;  // trivially destructible: readable at any time
thread_local MemCache mem_cache;

MemCache::~MemCache() {
  mem_cache_gone = true;
  for (int c = 0; c < kMemClasses; ++c) {
    while (head[c] != nullptr) {
      Piece* p = head[c];
      head[c] = p->next;
      std::free(reinterpret_cast<char*>(p) - kMemHeader);
    }
  }
}

int MemClass(size_t size) {
  size_t piece = kMemSmallest;
  for (int c = 0; c < kMemClasses; ++c, piece <<= 1) {
    if (size <= piece) return c;
  }
  return -1;
}

void* MemMalloc(size_t size, void*) {
  const int c = MemClass(size);
  char* base = nullptr;
  if (c >= 0 && !mem_cache_gone && mem_cache.head[c] != nullptr) {
    MemCache::Piece* p = mem_cache.head[c];
    mem_cache.head[c] = p->next;
    --mem_cache.count[c];
    base = reinterpret_cast<char*>(p) - kMemHeader;
  } else {
    base = static_cast<char*>(std::malloc(kMemHeader + (c >= 0 ? kMemSmallest << c : size)));
    if (base == nullptr) return nullptr;
  }
  const uint64_t tag = c >= 0 ? static_cast<uint64_t>(c) : kMemLarge;
  std::memcpy(base, &tag, sizeof tag);
  if (c < 0) std::memcpy(base + 8, &size, sizeof size);
  return base + kMemHeader;
}

void MemFree(void* ptr, void*) {
  if (ptr == nullptr) return;
  char* base = static_cast<char*>(ptr) - kMemHeader;
  uint64_t tag;
  std::memcpy(&tag, base, sizeof tag);
  if (tag != kMemLarge && !mem_cache_gone && mem_cache.count[tag] < kMemKeep) {
    auto* p = reinterpret_cast<MemCache::Piece*>(ptr);
    p->next = mem_cache.head[tag];
    mem_cache.head[tag] = p;
    ++mem_cache.count[tag];
    return;
  }
  std::free(base);
}

void* MemCalloc(size_t n, size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = MemMalloc(n * size, user);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* MemRealloc(void* ptr, size_t size, void* user) {
  if (ptr == nullptr) return MemMalloc(size, user);
  if (size == 0) {
    MemFree(ptr, user);
    return nullptr;
  }
  char* base = static_cast<char*>(ptr) - kMemHeader;
  uint64_t tag;
  std::memcpy(&tag, base, sizeof tag);
  size_t usable;
  if (tag == kMemLarge) {
    std::memcpy(&usable, base + 8, sizeof usable);
  } else {
    usable = kMemSmallest << tag;
  }
  if (size <= usable) return ptr;
  void* bigger = MemMalloc(size, user);
  if (bigger == nullptr) return nullptr;
  std::memcpy(bigger, ptr, usable);
  MemFree(ptr, user);
  return bigger;
}

#endif  // PRAEFECT_PLAIN_MALLOC

}  // namespace

nghttp2_mem* Nghttp2Allocator() {
#ifdef PRAEFECT_PLAIN_MALLOC
  return nullptr;  // nghttp2's default: malloc
#else
  static nghttp2_mem mem{nullptr, &MemMalloc, &MemFree, &MemCalloc, &MemRealloc};
  return &mem;
#endif
}

}  // namespace praefect::http2
