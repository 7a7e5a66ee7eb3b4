#include "server/status_reporter.h"

#include <cstdio>

namespace praefect::server {

StatusReporter::StatusReporter(const nodes::NodeSet* nodes, datastore::Datastore* store,
                               const metrics::Metrics* metrics, std::chrono::milliseconds period, Send send,
                               More more)
    : nodes_(nodes), store_(store), metrics_(metrics), period_(period), send_(std::move(send)), more_(std::move(more)) {}

StatusReporter::~StatusReporter() { Stop(); }

void StatusReporter::Start() {
  last_handled_ = metrics_->HandledCalls();
  last_time_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Loop(); });
}

void StatusReporter::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool StatusReporter::DatabaseResponsive(std::chrono::steady_clock::duration limit) const {
  const int64_t started = probe_started_.load(std::memory_order_acquire);
  if (started == 0) return true;
  const auto running = std::chrono::steady_clock::now().time_since_epoch().count() - started;
  return running <= limit.count();
}

void StatusReporter::Loop() {
  for (;;) {
    send_(Report());
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, period_, [this] { return stop_; })) return;
  }
}

std::string StatusReporter::Report() {
  size_t healthy = 0;
  size_t total = 0;
  for (const auto& vs : nodes_->virtual_storages()) {
    for (const auto& node : vs.nodes) {
      ++total;
      if (node->healthy.load()) ++healthy;
    }
  }
  probe_started_.store(std::max<int64_t>(1, std::chrono::steady_clock::now().time_since_epoch().count()),
                       std::memory_order_release);
  StatusOr<int64_t> queued = store_->CountJobs(datastore::JobState::kReady);
  probe_started_.store(0, std::memory_order_release);

  const auto now = std::chrono::steady_clock::now();
  const uint64_t handled = metrics_->HandledCalls();
  const double seconds = std::chrono::duration<double>(now - last_time_).count();
  const double rate = seconds > 0 ? static_cast<double>(handled - last_handled_) / seconds : 0;
  last_handled_ = handled;
  last_time_ = now;

  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, "%.1f", rate);
  std::string status = "serving; " + std::to_string(healthy) + "/" + std::to_string(total) +
                       " nodes healthy; ";
  if (queued.ok()) {
    status += std::to_string(*queued) + " replication jobs queued; ";
  } else {
    std::string why(queued.status().message());
    if (why.size() > 120) why = why.substr(0, 117) + "...";
    status += "replication queue unknown (" + why + "); ";
  }
  status += std::string(rate_text) + " RPC/s";
  if (more_) status += more_();
  return status;
}

}  // namespace praefect::server
