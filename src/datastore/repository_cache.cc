#include "datastore/repository_cache.h"

#include <algorithm>
#include <mutex>

namespace praefect::datastore {
namespace {

constexpr size_t kShards = 16;

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

size_t RepositoryCache::KeyHash::operator()(const KeyView& k) const {
  size_t h = std::hash<std::string_view>()(k.virtual_storage);
  return Mix(h ^ (std::hash<std::string_view>()(k.relative_path) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

RepositoryCache::RepositoryCache(Options options) : on_access_(std::move(options.on_access)) {
  size_t max_entries = std::max<size_t>(options.max_entries, 1);
  // Fewer shards than kShards for tiny caches, so the bound holds exactly.
  shard_count_ = max_entries >= kShards ? kShards : 1;
  per_shard_max_ = max_entries / shard_count_;
  shards_ = std::make_unique<Shard[]>(shard_count_);
  for (size_t i = 0; i < shard_count_; ++i) shards_[i].rng = Mix(options.seed + i) | 1;
}

RepositoryCache::Shard& RepositoryCache::ShardFor(size_t hash) {
  // The top bits: the map's buckets use the low ones.
  return shards_[(hash >> 56) % shard_count_];
}

StatusOr<std::optional<RepositoryMetadata>> RepositoryCache::Get(std::string_view virtual_storage,
                                                                 std::string_view relative_path,
                                                                 const Loader& load) {
  const KeyView key{virtual_storage, relative_path};
  const size_t hash = KeyHash()(key);
  Shard& shard = ShardFor(hash);
  if (!enabled()) {
    shard.misses.fetch_add(1, std::memory_order_relaxed);
    Observe(virtual_storage, Access::kMiss);
    return load();
  }
  {
    std::optional<RepositoryMetadata> hit;
    {
      std::shared_lock lock(shard.mu);
      auto it = shard.entries.find(key);
      if (it != shard.entries.end() && it->second.loading == 0) hit = it->second.meta;
    }
    if (hit.has_value()) {
      shard.hits.fetch_add(1, std::memory_order_relaxed);
      Observe(virtual_storage, Access::kHit);
      return hit;
    }
  }

  uint64_t token = 0;
  {
    std::unique_lock lock(shard.mu);
    // Checked under the shard lock: SetEnabled(false) clears every shard
    // under its lock after flipping the flag, so a placeholder put here is
    // either seen by that clear or never put.
    if (enabled()) {
      auto it = shard.entries.find(key);
      if (it == shard.entries.end()) {
        if (shard.entries.size() >= per_shard_max_) EvictOne(shard);
        token = next_token_.fetch_add(1, std::memory_order_relaxed);
        shard.entries.emplace(Key{std::string(virtual_storage), std::string(relative_path)}, Entry{token, {}});
      } else if (it->second.loading == 0) {  // filled since the shared lock was dropped
        shard.hits.fetch_add(1, std::memory_order_relaxed);
        std::optional<RepositoryMetadata> hit = it->second.meta;
        lock.unlock();
        Observe(virtual_storage, Access::kHit);
        return hit;
      }
    }
  }

  shard.misses.fetch_add(1, std::memory_order_relaxed);
  Observe(virtual_storage, Access::kMiss);
  auto result = load();
  if (token == 0) return result;

  bool populated = false;
  {
    std::unique_lock lock(shard.mu);
    auto it = shard.entries.find(key);
    if (it == shard.entries.end() || it->second.loading != token) return result;  // invalidated meanwhile
    if (result.ok() && result->has_value()) {
      it->second.loading = 0;
      it->second.meta = *result;
      populated = true;
    } else {
      shard.entries.erase(it);
    }
  }
  if (populated) Observe(virtual_storage, Access::kPopulate);
  return result;
}

std::optional<RepositoryMetadata> RepositoryCache::Peek(std::string_view virtual_storage,
                                                       std::string_view relative_path) {
  if (!enabled()) return std::nullopt;
  const KeyView key{virtual_storage, relative_path};
  Shard& shard = ShardFor(KeyHash()(key));
  std::optional<RepositoryMetadata> hit;
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.entries.find(key);
    if (it == shard.entries.end() || it->second.loading != 0 || !it->second.meta.has_value()) return std::nullopt;
    hit = it->second.meta;
  }
  shard.hits.fetch_add(1, std::memory_order_relaxed);
  Observe(virtual_storage, Access::kHit);
  return hit;
}

void RepositoryCache::EvictOne(Shard& shard) {
  auto& m = shard.entries;
  if (m.empty()) return;
  // A random bucket, then the next non-empty one: cheap and random enough.
  shard.rng ^= shard.rng << 13;
  shard.rng ^= shard.rng >> 7;
  shard.rng ^= shard.rng << 17;
  size_t buckets = m.bucket_count();
  size_t b = shard.rng % buckets;
  while (m.bucket_size(b) == 0) b = (b + 1) % buckets;
  auto victim = m.find(m.begin(b)->first);
  if (victim->second.loading == 0) Observe(victim->first.virtual_storage, Access::kEvict);
  m.erase(victim);
  evictions_.fetch_add(1, std::memory_order_relaxed);
}

void RepositoryCache::Invalidate(std::string_view virtual_storage, std::string_view relative_path) {
  const KeyView key{virtual_storage, relative_path};
  const size_t hash = KeyHash()(key);
  Shard& shard = ShardFor(hash);
  invalidations_.fetch_add(1, std::memory_order_relaxed);
  bool evicted = false;
  {
    std::unique_lock lock(shard.mu);
    auto it = shard.entries.find(key);
    if (it != shard.entries.end()) {
      evicted = it->second.loading == 0;
      shard.entries.erase(it);
    }
  }
  if (evicted) Observe(virtual_storage, Access::kEvict);
}

void RepositoryCache::ClearAll() {
  flushes_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < shard_count_; ++i) {
    std::unique_lock lock(shards_[i].mu);
    shards_[i].entries.clear();
  }
}

void RepositoryCache::InvalidateAll() { ClearAll(); }

void RepositoryCache::SetEnabled(bool enabled) {
  enabled_.store(enabled, std::memory_order_release);
  ClearAll();
}

uint64_t RepositoryCache::hits() const {
  uint64_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) n += shards_[i].hits.load(std::memory_order_relaxed);
  return n;
}

uint64_t RepositoryCache::misses() const {
  uint64_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) n += shards_[i].misses.load(std::memory_order_relaxed);
  return n;
}

size_t RepositoryCache::size() const {
  size_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    std::shared_lock lock(shards_[i].mu);
    n += shards_[i].entries.size();
  }
  return n;
}

}  // namespace praefect::datastore
