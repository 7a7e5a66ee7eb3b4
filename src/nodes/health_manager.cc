#include "nodes/health_manager.h"

#include <unistd.h>

#include <algorithm>

#include "log/log.h"

namespace praefect::nodes {

HealthManager::HealthManager(datastore::Datastore* store, NodeSet* nodes, HealthManagerOptions options)
    : store_(store), nodes_(nodes), options_(std::move(options)) {}

HealthManager::~HealthManager() { Stop(); }

void HealthManager::Start() {
  nodes_->SetRoundObserver([this] {
    {
      std::lock_guard lock(mu_);
      round_pending_ = true;
    }
    cv_.notify_all();
  });
  {
    std::lock_guard lock(mu_);
    running_ = true;
  }
  thread_ = std::thread([this] { Loop(); });
}

void HealthManager::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    running_ = false;
  }
  cv_.notify_all();
  recorded_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HealthManager::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || round_pending_; });
    if (stopping_) return;
    round_pending_ = false;
    lock.unlock();
    Status st = Sync();
    lock.lock();
    if (!st.ok() && !last_sync_failed_) {
      log::Warn("cannot record node health in the database: elections wait until it is reachable again",
                {{"praefect_name", options_.praefect_name}, {"error", st.message()}});
    } else if (st.ok() && last_sync_failed_) {
      log::Info("recording node health in the database again", {{"praefect_name", options_.praefect_name}});
    }
    last_sync_failed_ = !st.ok();
  }
}

std::chrono::steady_clock::time_point HealthManager::Now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

Status HealthManager::Sync() {
  std::vector<datastore::NodeHealth> checks;
  for (const auto& vs : nodes_->virtual_storages()) {
    for (const auto& node : vs.nodes) checks.push_back({vs.name, node->storage, node->healthy.load()});
  }
  Status st = store_->RecordHealth(options_.praefect_name, checks);
  datastore::HealthyStorages quorum;
  if (st.ok()) {
    auto healthy = store_->GetHealthyStorages(options_.window);
    if (healthy.ok()) {
      quorum = std::move(*healthy);
    } else {
      st = healthy.status();
    }
  }
  {
    std::lock_guard lock(mu_);
    if (st.ok()) {
      quorum_ = std::move(quorum);
      quorum_at_ = Now();
    } else {
      failed_at_ = Now();
      last_error_ = st;
    }
  }
  recorded_cv_.notify_all();
  return st;
}

bool HealthManager::RecordedFresh(std::chrono::steady_clock::time_point now) const {
  return quorum_at_ != std::chrono::steady_clock::time_point{} && quorum_at_ > failed_at_ &&
         now - quorum_at_ < options_.window;
}

Status HealthManager::AwaitRecorded(std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  if (RecordedFresh(Now())) return Status::Ok();
  if (!stopping_) {
    // Running: ask for a round now. Not running yet: serve is starting (its
    // listeners take calls before the first round is recorded; socket
    // activation queues them there), and its first Sync comes within a
    // second or so. Either way, wait for it.
    if (running_) {
      round_pending_ = true;
      cv_.notify_all();
    }
    recorded_cv_.wait_until(lock, std::chrono::steady_clock::now() + wait,
                            [this] { return stopping_ || RecordedFresh(Now()); });
    if (RecordedFresh(Now())) return Status::Ok();
  }
  std::string why;
  if (failed_at_ != std::chrono::steady_clock::time_point{} && failed_at_ >= quorum_at_) {
    why = "this praefect could not record its health checks of the nodes in the database (" +
          last_error_.message() + ")";
  } else {
    why = "this praefect has not recorded its health checks of the nodes in the database for longer than "
          "[failover] quorum_window";
  }
  return Unavailable(why + ", so it elects no primary: the other praefects' records may be just as old, and "
                     "an election on them would find no node healthy. Retry in a few seconds; writes resume "
                     "once a round of health checks is recorded");
}

std::vector<std::string> HealthManager::QuorumHealthy(std::string_view virtual_storage) const {
  {
    std::lock_guard lock(mu_);
    if (quorum_at_ != std::chrono::steady_clock::time_point{} && Now() - quorum_at_ < options_.window) {
      auto it = quorum_.find(virtual_storage);
      return it == quorum_.end() ? std::vector<std::string>{} : it->second;
    }
  }
  std::vector<std::string> local;
  const VirtualStorage* vs = nodes_->Find(virtual_storage);
  if (vs == nullptr) return local;
  for (const auto& node : vs->nodes) {
    if (node->healthy.load()) local.push_back(node->storage);
  }
  std::sort(local.begin(), local.end());
  return local;
}

std::string PraefectName(const config::Config& config) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string address = !config.listen_addr.empty()       ? config.listen_addr
                        : !config.tls_listen_addr.empty() ? config.tls_listen_addr
                                                          : config.socket_path;
  return std::string(host) + ":" + address;
}

}  // namespace praefect::nodes
