#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "datastore/datastore.h"

namespace praefect::datastore {

// An in-memory cache of Datastore::GetRepository, so that routing a read
// costs no database round trip. Keyed by (virtual storage, relative path);
// holds registered repositories only: "not registered" and errors are never
// cached, so a repository another praefect just created is seen at once.
//
// Thread-safe. A hit takes one shard's shared lock and copies the metadata
// out; misses, stores and invalidations take that shard's exclusive lock.
//
// How to use it (the composition root wires this; nothing else constructs
// it):
//  * Construction, with PostgreSQL only (src/server/):
//      RepositoryCache cache;  // RepositoryCache::Options{max_entries}
//      PostgresCacheInvalidator invalidator(&cache, postgres::NewListener(cfg.database));
//    declared in this order, so the invalidator (which holds a pointer to
//    the cache) is destroyed first. The invalidator disables the cache at
//    once and enables it when its LISTEN is in place.
//  * Reads: `cache.Get(vs, rel, [&] { return store.GetRepository(vs, rel); })`
//    in place of `store.GetRepository(vs, rel)`.
//  * Every change of a repository's replicas, by any praefect, reaches every
//    cache through PostgreSQL: the triggers of migration 0002 NOTIFY
//    `repositories_updates` on insert, delete and generation changes of
//    storage_repositories and on deletion from repositories, and a
//    PostgresCacheInvalidator (postgres_cache_invalidator.h) turns each
//    notification into Invalidate() calls. It also disables the cache while
//    its LISTEN connection is down, so the cache starts out correct only
//    once that connection is up; until then Get loads every time.
//  * A praefect's own writes (CreateRepository, RecordWrite, SetGeneration,
//    DeleteRepository, SetReplicationFactor) should call Invalidate(vs, rel)
//    right after the store call returns, success or failure: the
//    notification arrives only after a round trip through PostgreSQL
//    (milliseconds), and a read of the same repository by the same client
//    in between must not see the state before its own write. SetGeneration
//    is the replicator's: its ReplicationJob names virtual_storage and
//    relative_path. Invalidating twice (own call, then the notification) is
//    harmless: it costs one extra load.
//  * What the triggers do NOT report: changes of repositories."primary"
//    (GetPrimary's elections) and of repository_assignments without a
//    replica record change (storages newly assigned by SetReplicationFactor).
//    A cached `primary` and `assigned` may therefore be stale: route writes
//    with Datastore::GetPrimary, never with the cached primary; use the cache
//    for choosing read replicas (UpToDate(), IsAssigned()), where a stale
//    assignment at worst leaves out a storage that is just being populated.
//  * With the memory datastore (one praefect, no PostgreSQL) there is
//    nothing to invalidate from outside; do not use the cache there, or
//    Invalidate after every write as above.
//
// Races: a load must not store a result it read before an invalidation of
// its key. On a miss, Get first puts a placeholder for the key carrying a
// token unique to this load, then loads, then stores only if that same
// placeholder is still there. Invalidate(key) erases the key's entry,
// placeholder or not; InvalidateAll and SetEnabled erase all of them; an
// eviction may erase one. Any of these between the start of a load and its
// end makes the store a no-op, per key, so invalidations of other
// repositories never cost this one its fill. When a placeholder for the key
// already exists (another thread is loading it), Get loads without storing.
//
// Bound: at most `max_entries` entries (placeholders included), split evenly
// over the shards. A store into a full shard evicts a random entry of that
// shard: cheaper than LRU bookkeeping on every hit, and a cache this size is
// meant to hold the working set, so what it evicts matters little.
class RepositoryCache {
 public:
  // What an access did, for metrics (Praefect's
  // gitaly_praefect_uptodate_storages_cache_access_total types): a lookup
  // served from the cache, a lookup that loaded, a load stored, an entry
  // removed (evicted for room or invalidated; flushes are not counted).
  enum class Access { kHit, kMiss, kPopulate, kEvict };
  using AccessObserver = std::function<void(std::string_view virtual_storage, Access access)>;

  struct Options {
    size_t max_entries = 100000;
    uint64_t seed = 0x5eed;  // for the choice of evicted entries
    // Called on every access, from the accessing thread, without the
    // cache's locks held but for kEvict of a full shard (under its lock):
    // it must be cheap and must not call back into the cache. May be empty.
    AccessObserver on_access;
  };

  using Loader = std::function<StatusOr<std::optional<RepositoryMetadata>>()>;

  RepositoryCache() : RepositoryCache(Options{}) {}
  explicit RepositoryCache(Options options);
  RepositoryCache(const RepositoryCache&) = delete;
  RepositoryCache& operator=(const RepositoryCache&) = delete;

  // The cached metadata of (vs, rel), or what `load` returns (which is then
  // cached when it is a registered repository, the cache is enabled and the
  // key was not invalidated meanwhile). `load` runs on the calling thread
  // without any lock held.
  StatusOr<std::optional<RepositoryMetadata>> Get(std::string_view virtual_storage, std::string_view relative_path,
                                                  const Loader& load);

  // The cached metadata of (vs, rel) when the cache holds it (a hit), else
  // nullopt, without loading: for routing that must not block.
  std::optional<RepositoryMetadata> Peek(std::string_view virtual_storage, std::string_view relative_path);

  // Drops (vs, rel), and makes any load of it in flight not store.
  void Invalidate(std::string_view virtual_storage, std::string_view relative_path);
  // Drops everything, and makes every load in flight not store.
  void InvalidateAll();
  // Disabled, Get always loads and stores nothing. Either change flushes
  // the cache. Starts enabled.
  void SetEnabled(bool enabled);
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }

  // For tests and metrics.
  uint64_t hits() const;
  uint64_t misses() const;  // calls of `load`, including those while disabled
  uint64_t invalidations() const { return invalidations_.load(std::memory_order_relaxed); }  // Invalidate()
  uint64_t flushes() const { return flushes_.load(std::memory_order_relaxed); }  // InvalidateAll, SetEnabled
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  size_t size() const;  // entries, placeholders included

 private:
  struct Key {
    std::string virtual_storage;
    std::string relative_path;
  };
  struct KeyView {
    std::string_view virtual_storage;
    std::string_view relative_path;
  };
  // Transparent, so a hit looks up by string_views without building a Key.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const KeyView& k) const;
    size_t operator()(const Key& k) const { return (*this)(KeyView{k.virtual_storage, k.relative_path}); }
  };
  struct KeyEq {
    using is_transparent = void;
    static KeyView V(const Key& k) { return {k.virtual_storage, k.relative_path}; }
    static KeyView V(const KeyView& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return V(a).virtual_storage == V(b).virtual_storage && V(a).relative_path == V(b).relative_path;
    }
  };
  struct Entry {
    uint64_t loading = 0;  // non-zero: a placeholder, owned by the load with this token
    std::optional<RepositoryMetadata> meta;
  };
  struct alignas(64) Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<Key, Entry, KeyHash, KeyEq> entries;  // GUARDED_BY(mu)
    uint64_t rng = 0;                                        // GUARDED_BY(mu)
    std::atomic<uint64_t> hits{0};
    std::atomic<uint64_t> misses{0};
  };

  Shard& ShardFor(size_t hash);
  // REQUIRES: shard.mu held exclusively, shard full.
  void EvictOne(Shard& shard);
  void ClearAll();
  void Observe(std::string_view virtual_storage, Access access) const {
    if (on_access_) on_access_(virtual_storage, access);
  }

  AccessObserver on_access_;
  size_t shard_count_;
  size_t per_shard_max_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<bool> enabled_{true};
  std::atomic<uint64_t> next_token_{1};
  std::atomic<uint64_t> invalidations_{0};
  std::atomic<uint64_t> flushes_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace praefect::datastore
