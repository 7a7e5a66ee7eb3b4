#include "datastore/postgres_cache_invalidator.h"

#include "datastore/repositories_updates.h"
#include "log/log.h"

namespace praefect::datastore {

PostgresCacheInvalidator::PostgresCacheInvalidator(RepositoryCache* cache,
                                                   std::unique_ptr<postgres::Listener> listener, Options options)
    : cache_(cache), listener_(std::move(listener)), options_(options) {
  // Nothing guarantees the cache is fresh until LISTEN is in place.
  cache_->SetEnabled(false);
  thread_ = std::thread([this] { Run(); });
}

PostgresCacheInvalidator::~PostgresCacheInvalidator() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void PostgresCacheInvalidator::Run() {
  // Listen remembers the channel even when it fails: every later Wait
  // re-dials and LISTENs on it, so this is the only call.
  Status st = listener_->Listen(std::string(kRepositoriesUpdatesChannel),
                                postgres::Clock::now() + options_.listen_timeout);
  if (st.ok()) {
    Up(false);
  } else {
    Down(st);
  }
  while (!stopping_.load()) {
    auto got = listener_->Wait(options_.poll);
    if (!got.ok()) {
      Down(got.status());
      continue;
    }
    // A re-dial inside this Wait: whatever was sent in between is lost.
    bool reconnected = listener_->TakeReconnected();
    if (!up_.load(std::memory_order_relaxed) || reconnected) Up(reconnected);
    for (const auto& n : *got) Apply(n.payload);
  }
}

void PostgresCacheInvalidator::Apply(const std::string& payload) {
  notifications_.fetch_add(1, std::memory_order_relaxed);
  auto changed = ParseRepositoriesUpdates(payload);
  if (!changed.ok()) {
    log::Warn("reads distribution cache: flushing it all, a notification did not say which repositories changed",
              {{"error", changed.status().message()}, {"payload", payload.substr(0, 512)}});
    cache_->InvalidateAll();
    return;
  }
  for (const auto& c : *changed) {
    if (c.all) {  // one statement changed too many repositories to name them
      cache_->InvalidateAll();
      return;
    }
    for (const auto& path : c.relative_paths) cache_->Invalidate(c.virtual_storage, path);
  }
}

void PostgresCacheInvalidator::Up(bool reconnected) {
  // Flush first, then enable (SetEnabled flushes as well): every change
  // committed while no LISTEN was in place is forgotten, and every load in
  // flight that may have read it does not store.
  cache_->InvalidateAll();
  cache_->SetEnabled(true);
  bool was_up = up_.exchange(true);
  if (!ever_up_) {
    log::Info("reads distribution caching is enabled by configuration");
  } else if (!was_up || reconnected) {
    log::Info("reads distribution cache enabled again: the LISTEN connection to the database is back; "
              "the cache starts empty");
  }
  ever_up_ = true;
  down_logged_ = false;
  if (options_.on_transition && (!was_up || reconnected)) options_.on_transition(true);
}

void PostgresCacheInvalidator::Down(const Status& why) {
  bool was_up = up_.exchange(false);
  if (was_up) cache_->SetEnabled(false);
  if (was_up || !down_logged_) {
    log::Warn("reads distribution cache disabled: no LISTEN connection to the database for repositories_updates, "
              "so every read queries the database until it is back",
              {{"error", why.message()}});
  }
  down_logged_ = true;
  if (was_up && options_.on_transition) options_.on_transition(false);
}

}  // namespace praefect::datastore
