// The repository metadata cache: fill on miss, invalidation, disabled mode,
// what is never cached, the load/invalidate race, the bound, and threads.
#include "datastore/repository_cache.h"

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "test_support.h"

namespace {

using namespace praefect::datastore;  // NOLINT: test file
using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;

using Result = StatusOr<std::optional<RepositoryMetadata>>;

RepositoryMetadata Meta(const std::string& rel, int64_t generation) {
  RepositoryMetadata m;
  m.repository_id = 7;
  m.virtual_storage = "default";
  m.relative_path = rel;
  m.replica_path = DeriveReplicaPath(7);
  m.primary = "gitaly-1";
  m.generation = generation;
  m.replicas = {{"gitaly-1", generation}, {"gitaly-2", generation - 1}};
  return m;
}

// A loader that counts its calls and returns what `next` holds.
struct Source {
  int calls = 0;
  Result next = std::optional<RepositoryMetadata>();
  RepositoryCache::Loader Loader() {
    return [this]() -> Result {
      ++calls;
      return next;
    };
  }
};

int64_t Generation(const Result& r) {
  assert_status_ok(r.status());
  assert_true(r->has_value());
  return (*r)->generation;
}

void HitAfterMiss(void**) {
  RepositoryCache cache;
  Source src;
  src.next = std::optional(Meta("a.git", 3));
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 3);
  src.next = std::optional(Meta("a.git", 4));  // the database moved on; nobody told the cache
  auto again = cache.Get("default", "a.git", src.Loader());
  assert_int_equal(Generation(again), 3);
  assert_int_equal(src.calls, 1);
  assert_string_equal((*again)->replicas[1].storage.c_str(), "gitaly-2");
  assert_int_equal(cache.hits(), 1);
  assert_int_equal(cache.misses(), 1);
  // The key is both names: another virtual storage or path is another entry.
  (void)cache.Get("other", "a.git", src.Loader());
  (void)cache.Get("default", "b.git", src.Loader());
  assert_int_equal(src.calls, 3);
}

void InvalidateReloads(void**) {
  RepositoryCache cache;
  Source src;
  src.next = std::optional(Meta("a.git", 1));
  (void)cache.Get("default", "a.git", src.Loader());
  src.next = std::optional(Meta("b.git", 1));
  (void)cache.Get("default", "b.git", src.Loader());
  src.next = std::optional(Meta("a.git", 2));
  cache.Invalidate("default", "a.git");
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 2);
  assert_int_equal(src.calls, 3);
  (void)cache.Get("default", "b.git", src.Loader());  // untouched by a's invalidation
  assert_int_equal(src.calls, 3);
  assert_int_equal(cache.invalidations(), 1);

  cache.InvalidateAll();
  assert_int_equal(cache.size(), 0);
  (void)cache.Get("default", "a.git", src.Loader());
  (void)cache.Get("default", "b.git", src.Loader());
  assert_int_equal(src.calls, 5);
}

void DisabledAlwaysLoads(void**) {
  RepositoryCache cache;
  Source src;
  src.next = std::optional(Meta("a.git", 1));
  (void)cache.Get("default", "a.git", src.Loader());
  cache.SetEnabled(false);
  assert_false(cache.enabled());
  assert_int_equal(cache.size(), 0);
  for (int i = 0; i < 3; ++i) (void)cache.Get("default", "a.git", src.Loader());
  assert_int_equal(src.calls, 4);
  assert_int_equal(cache.size(), 0);
  // Back on: empty (what was cached before going off may be stale), fills again.
  src.next = std::optional(Meta("a.git", 9));
  cache.SetEnabled(true);
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 9);
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 9);
  assert_int_equal(src.calls, 5);
  // Turning it on while on flushes it as well.
  cache.SetEnabled(true);
  assert_int_equal(cache.size(), 0);
}

void NotFoundIsNotCached(void**) {
  RepositoryCache cache;
  Source src;  // not registered
  assert_false(cache.Get("default", "new.git", src.Loader())->has_value());
  // Another praefect creates it: the next read must see it at once.
  src.next = std::optional(Meta("new.git", 0));
  assert_int_equal(Generation(cache.Get("default", "new.git", src.Loader())), 0);
  assert_int_equal(src.calls, 2);
  assert_int_equal(cache.size(), 1);
}

void ErrorsAreNotCached(void**) {
  RepositoryCache cache;
  Source src;
  src.next = Status(StatusCode::kUnavailable, "database unavailable: test");
  auto r = cache.Get("default", "a.git", src.Loader());
  assert_int_equal(static_cast<int>(r.status().code()), static_cast<int>(StatusCode::kUnavailable));
  assert_int_equal(cache.size(), 0);  // no placeholder left behind either
  src.next = std::optional(Meta("a.git", 5));
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 5);
  assert_int_equal(src.calls, 2);
}

// A load that read the database before an invalidation of its key must not
// store what it read: here the invalidation lands while the load runs.
void InvalidatedLoadDoesNotStore(void**) {
  RepositoryCache cache;
  int calls = 0;
  auto racing = [&]() -> Result {
    ++calls;
    auto stale = Meta("a.git", 1);             // what the SELECT saw...
    cache.Invalidate("default", "a.git");      // ...then a write committed and notified
    return std::optional(stale);
  };
  assert_int_equal(Generation(cache.Get("default", "a.git", racing)), 1);  // the caller still gets its answer
  assert_int_equal(cache.size(), 0);
  Source src;
  src.next = std::optional(Meta("a.git", 2));
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 2);
  assert_int_equal(src.calls, 1);

  // The same with a flush, and with the cache disabled and enabled again.
  cache.InvalidateAll();
  auto flushing = [&]() -> Result {
    cache.InvalidateAll();
    return std::optional(Meta("a.git", 1));
  };
  (void)cache.Get("default", "a.git", flushing);
  auto toggling = [&]() -> Result {
    cache.SetEnabled(false);
    cache.SetEnabled(true);
    return std::optional(Meta("a.git", 1));
  };
  (void)cache.Get("default", "a.git", toggling);
  assert_int_equal(cache.size(), 0);
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 2);
  assert_int_equal(src.calls, 2);

  // An invalidation of another repository does not spoil this fill.
  cache.InvalidateAll();
  auto other = [&]() -> Result {
    cache.Invalidate("default", "b.git");
    return std::optional(Meta("a.git", 3));
  };
  (void)cache.Get("default", "a.git", other);
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 3);
  assert_int_equal(src.calls, 2);
}

// Two loads of one key at once: the second (started while the first is in
// flight) returns its own result and does not store it.
void ConcurrentLoadOfOneKey(void**) {
  RepositoryCache cache;
  auto outer = [&]() -> Result {
    auto inner = [&]() -> Result { return std::optional(Meta("a.git", 2)); };
    assert_int_equal(Generation(cache.Get("default", "a.git", inner)), 2);
    return std::optional(Meta("a.git", 1));
  };
  assert_int_equal(Generation(cache.Get("default", "a.git", outer)), 1);
  Source src;
  assert_int_equal(Generation(cache.Get("default", "a.git", src.Loader())), 1);
  assert_int_equal(src.calls, 0);
}

void Bounded(void**) {
  for (size_t max : {size_t{1}, size_t{10}, size_t{100}}) {
    RepositoryCache cache(RepositoryCache::Options{max, 42, {}});
    Source src;
    for (int i = 0; i < 1000; ++i) {
      std::string rel = "r" + std::to_string(i) + ".git";
      src.next = std::optional(Meta(rel, i));
      (void)cache.Get("default", rel, src.Loader());
      expect_that(cache.size() <= max, "at most " + std::to_string(max) + " entries, got " +
                                           std::to_string(cache.size()));
    }
    assert_int_equal(src.calls, 1000);
    expect_that(cache.evictions() >= 1000 - max, "evictions to keep the bound");
    // What is left is served without loading, with the right value. Newest
    // first: a probe that misses may evict, but never the newest entry
    // before it is probed.
    int hits = 0;
    for (int i = 999; i >= 0; --i) {
      std::string rel = "r" + std::to_string(i) + ".git";
      int before = src.calls;
      src.next = std::optional(Meta(rel, -1));
      auto r = cache.Get("default", rel, src.Loader());
      if (src.calls == before) {
        ++hits;
        assert_int_equal(Generation(r), i);
      }
    }
    expect_that(hits > 0, "some entries to survive eviction with max " + std::to_string(max));
  }
}

// Threads reading, invalidating and flushing: no crash, no data race (the
// sanitizer build), and every answer is one a loader gave for that key.
void ManyThreads(void**) {
  RepositoryCache cache(RepositoryCache::Options{64, 1, {}});
  std::atomic<bool> stop{false};
  std::atomic<int64_t> wrong{0};
  std::atomic<int64_t> gets{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      uint32_t x = 2463534242u + t;
      while (!stop.load(std::memory_order_relaxed)) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int k = static_cast<int>(x % 100);
        std::string rel = "r" + std::to_string(k) + ".git";
        if (t == 0 && x % 8 == 0) {
          cache.Invalidate("default", rel);
        } else if (t == 0 && x % 997 == 0) {
          cache.InvalidateAll();
        } else if (t == 1 && x % 4093 == 0) {
          cache.SetEnabled(x % 2 == 0);
        } else {
          auto r = cache.Get("default", rel, [&]() -> Result {
            if (x % 50 == 0) return Status(StatusCode::kUnavailable, "flaky");
            if (x % 40 == 0) return std::optional<RepositoryMetadata>();
            return std::optional(Meta(rel, k));
          });
          ++gets;
          if (r.ok() && r->has_value() && ((*r)->generation != k || (*r)->relative_path != rel)) ++wrong;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the test's duration, not a wait for a condition
  stop = true;
  for (auto& th : threads) th.join();
  assert_int_equal(wrong.load(), 0);
  expect_that(gets.load() > 1000, "the threads to make progress");
  expect_that(cache.size() <= 64, "the bound under concurrency");
  fprintf(stderr, "%lld gets, %llu hits, %llu misses\n", static_cast<long long>(gets.load()),
          static_cast<unsigned long long>(cache.hits()), static_cast<unsigned long long>(cache.misses()));
}

}  // namespace

// What metrics see (gitaly_praefect_uptodate_storages_cache_access_total):
// per virtual storage, a miss and a populate on the first read, hits after,
// an evict for an invalidated or a displaced entry, nothing for a failed load.
void AccessesObserved(void**) {
  std::map<std::string, int> seen;
  RepositoryCache::Options options{1, 7, {}};
  options.on_access = [&seen](std::string_view vs, RepositoryCache::Access access) {
    static const char* const kNames[] = {"hit", "miss", "populate", "evict"};
    seen[std::string(vs) + "/" + kNames[static_cast<int>(access)]]++;
  };
  RepositoryCache cache(std::move(options));
  Source src;
  src.next = std::optional(Meta("a.git", 1));
  (void)cache.Get("vs1", "a.git", src.Loader());
  (void)cache.Get("vs1", "a.git", src.Loader());
  (void)cache.Peek("vs1", "a.git");
  expect_that(seen["vs1/miss"] == 1 && seen["vs1/populate"] == 1 && seen["vs1/hit"] == 2,
              "1 miss, 1 populate, 2 hits");
  cache.Invalidate("vs1", "a.git");
  expect_that(seen["vs1/evict"] == 1, "the invalidation evicts");
  cache.Invalidate("vs1", "a.git");
  expect_that(seen["vs1/evict"] == 1, "nothing left to evict");
  (void)cache.Get("vs1", "a.git", src.Loader());
  (void)cache.Get("vs2", "b.git", src.Loader());  // the cache holds one entry: a.git makes room
  expect_that(seen["vs1/evict"] == 2 && seen["vs2/populate"] == 1, "displaced for room");
  src.next = Status(StatusCode::kUnavailable, "database down");
  (void)cache.Get("vs2", "c.git", src.Loader());
  expect_that(seen["vs2/miss"] == 2 && seen["vs2/populate"] == 1, "a failed load is a miss, not stored");
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(AccessesObserved),      cmocka_unit_test(HitAfterMiss),          cmocka_unit_test(InvalidateReloads),
      cmocka_unit_test(DisabledAlwaysLoads),   cmocka_unit_test(NotFoundIsNotCached),
      cmocka_unit_test(ErrorsAreNotCached),    cmocka_unit_test(InvalidatedLoadDoesNotStore),
      cmocka_unit_test(ConcurrentLoadOfOneKey), cmocka_unit_test(Bounded),
      cmocka_unit_test(ManyThreads),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
