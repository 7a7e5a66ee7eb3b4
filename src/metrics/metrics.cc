#include "metrics/metrics.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <string>
#include <unordered_map>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/text_serializer.h>

#include "metrics/grpc_server_metrics.h"

namespace praefect::metrics {

namespace {

// prometheus/client_golang's DefBuckets.
const std::vector<double> kDefBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// prometheus-cpp throws on unsorted boundaries; config validation rejects
// them, but a throw from a gRPC thread would end the process.
std::vector<double> SortedBuckets(std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

// The series of a counter family by their label values, remembered: the
// per-call counters would otherwise build a label map and hash it on every
// call (Family::Add). Thread-safe.
class CounterMemo {
 public:
  explicit CounterMemo(prometheus::Family<prometheus::Counter>& family) : family_(family) {}

  // `names` and `values` pair up.
  template <size_t N>
  prometheus::Counter* Get(const std::array<std::string_view, N>& names,
                           const std::array<std::string_view, N>& values) {
    std::string key;
    for (std::string_view v : values) {
      key.append(v);
      key += '\0';
    }
    std::lock_guard lock(mu_);
    if (auto it = series_.find(key); it != series_.end()) return it->second;
    prometheus::Labels labels;
    for (size_t i = 0; i < N; ++i) labels.emplace(std::string(names[i]), std::string(values[i]));
    prometheus::Counter* counter = &family_.Add(labels);
    series_.emplace(std::move(key), counter);
    return counter;
  }

 private:
  prometheus::Family<prometheus::Counter>& family_;
  std::mutex mu_;
  std::unordered_map<std::string, prometheus::Counter*> series_;  // GUARDED_BY(mu_)
};

}  // namespace

void Counter::Increment(double by) { counter_->Increment(by); }
double Counter::Value() const { return counter_->Value(); }
void Histogram::Observe(double value) { histogram_->Observe(value); }
void Gauge::Increment(double by) { gauge_->Increment(by); }
void Gauge::Decrement(double by) { gauge_->Decrement(by); }
void Gauge::Set(double value) { gauge_->Set(value); }
double Gauge::Value() const { return gauge_->Value(); }

struct Metrics::Impl {
  explicit Impl(Options options)
      : node_latency_buckets(options.grpc_latency_buckets.empty() ? kDefBuckets
                                                                  : SortedBuckets(options.grpc_latency_buckets)),
        grpc_server(registry, SortedBuckets(options.grpc_latency_buckets), options.grpc_type),
        grpc_client(registry, SortedBuckets(options.grpc_latency_buckets), options.grpc_type,
                    GrpcServerMetrics::Side::kClient),
        // Praefect declares these without help texts; these say what they count.
        method_types(prometheus::BuildCounter()
                         .Name("gitaly_praefect_method_types")
                         .Help("Calls proxied by praefect, by method type (accessor, mutator, ...).")
                         .Register(registry)),
        node_latency(prometheus::BuildHistogram()
                         .Name("gitaly_praefect_node_latency")
                         .Help("Latency of a health check of a storage node, in seconds.")
                         .Register(registry)),
        authentications(prometheus::BuildCounter()
                            .Name("gitaly_authentications_total")
                            .Help("Counts of authentications by enforcement and outcome.")
                            .Register(registry)),
        replication_latency(prometheus::BuildHistogram()
                                .Name("gitaly_praefect_replication_latency")
                                .Help("Seconds from the start of a replication job to its end, by change type.")
                                .Register(registry)),
        replication_delay(prometheus::BuildHistogram()
                              .Name("gitaly_praefect_replication_delay")
                              .Help("Seconds from the creation of a replication job to its start, by change type.")
                              .Register(registry)),
        read_distribution(prometheus::BuildCounter()
                              .Name("gitaly_praefect_read_distribution")
                              .Help("Reads routed to each storage of a virtual storage.")
                              .Register(registry)),
        replication_jobs(prometheus::BuildGauge()
                             .Name("gitaly_praefect_replication_jobs")
                             .Help("Replication jobs in progress.")
                             .Register(registry)),
        reconciliation_buckets(options.reconciliation_buckets.empty()
                                   ? kDefBuckets
                                   : SortedBuckets(std::move(options.reconciliation_buckets))),
        reconciliation_scheduling(prometheus::BuildHistogram()
                                      .Name("gitaly_praefect_reconciliation_scheduling_seconds")
                                      .Help("The time spent performing each reconciliation scheduling run.")
                                      .Register(registry)),
        reconciliation_jobs(prometheus::BuildCounter()
                                .Name("gitaly_praefect_reconciliation_jobs_total")
                                .Help("Replication jobs scheduled by reconciliation, by virtual storage and change "
                                      "type.")
                                .Register(registry)),
        content_verification(prometheus::BuildCounter()
                                 .Name("gitaly_praefect_content_verification_replicas_total")
                                 .Help("Replicas whose checksum content verification compared with their primary's, "
                                       "by outcome.")
                                 .Register(registry)),
        untracked_repositories(prometheus::BuildCounter()
                                   .Name("gitaly_praefect_untracked_repositories_total")
                                   .Help("Repositories found on a node's disk that the database does not know, "
                                         "by repository cleanup (reported, never deleted).")
                                   .Register(registry)),
        verification_dequeued(prometheus::BuildCounter()
                                  .Name("gitaly_praefect_verification_jobs_dequeued_total")
                                  .Help("Replicas leased for background verification, by virtual storage and storage.")
                                  .Register(registry)),
        verification_completed(prometheus::BuildCounter()
                                   .Name("gitaly_praefect_verification_jobs_completed_total")
                                   .Help("Background verification checks done, by virtual storage, storage and "
                                         "result (valid, invalid, error).")
                                   .Register(registry)),
        stale_verification_leases(prometheus::BuildCounter()
                                      .Name("gitaly_praefect_stale_verification_leases_released_total")
                                      .Help("Verification leases of stopped verifiers released.")
                                      .Register(registry)),
        // Help texts as Praefect's.
        transactions(prometheus::BuildCounter()
                         .Name("gitaly_praefect_transactions_total")
                         .Help("Total number of transaction actions")
                         .Register(registry)),
        transactions_delay(prometheus::BuildHistogram()
                               .Name("gitaly_praefect_transactions_delay_seconds")
                               .Help("Delay between casting a vote and reaching quorum")
                               .Register(registry)),
        subtransactions(prometheus::BuildHistogram()
                            .Name("gitaly_praefect_subtransactions_per_transaction_total")
                            .Help("The number of subtransactions created for a single registered transaction")
                            .Register(registry)),
        voters_per_transaction(prometheus::BuildHistogram()
                                   .Name("gitaly_praefect_voters_per_transaction_total")
                                   .Help("The number of voters a given transaction was created with")
                                   .Register(registry)),
        tx_replications(prometheus::BuildCounter()
                            .Name("gitaly_praefect_tx_replications_total")
                            .Help("The number of replication jobs scheduled after transactions, by reason")
                            .Register(registry)),
        authentication_errors(prometheus::BuildCounter()
                                  .Name("gitaly_authentication_errors_total")
                                  .Help("Counts of Gitaly request authentication errors")
                                  .Register(registry)),
        connections(prometheus::BuildCounter()
                        .Name("gitaly_praefect_connections_total")
                        .Help("Client connections accepted, by listener type (tcp, tls, unix).")
                        .Register(registry)),
        node_healthy(prometheus::BuildGauge()
                         .Name("gitaly_praefect_node_healthy")
                         .Help("1 while this praefect's health checks see the storage node healthy, else 0.")
                         .Register(registry)),
        primary_elections(prometheus::BuildCounter()
                              .Name("gitaly_praefect_primary_elections_total")
                              .Help("Repository primaries this praefect elected, by the storage elected (none: "
                                    "the repository was left without a primary).")
                              .Register(registry)),
        replication_dead_jobs(prometheus::BuildCounter()
                                  .Name("gitaly_praefect_replication_dead_jobs_total")
                                  .Help("Replication jobs given up after their last attempt; the replica stays "
                                        "outdated until the next write or reconciliation.")
                                  .Register(registry)),
        tls_expiry(prometheus::BuildGauge()
                       .Name("gitaly_praefect_tls_certificate_expiry_timestamp_seconds")
                       .Help("When the certificate of praefect's TLS listeners expires, in seconds since the "
                             "Unix epoch.")
                       .Register(registry)),
        notifications_reconnects(prometheus::BuildCounter()
                                     .Name("gitaly_praefect_notifications_reconnects_total")
                                     .Help("Number of reconnects to the notification channel (LISTEN) of the "
                                           "read cache, by state.")
                                     .Register(registry)),
        cache_access(prometheus::BuildCounter()
                         .Name("gitaly_praefect_uptodate_storages_cache_access_total")
                         .Help("Accesses of the read distribution cache, by virtual storage and type.")
                         .Register(registry)) {}

  const std::vector<double> node_latency_buckets;
  prometheus::Registry registry;
  GrpcServerMetrics grpc_server;
  GrpcServerMetrics grpc_client;
  prometheus::Family<prometheus::Counter>& method_types;
  prometheus::Family<prometheus::Histogram>& node_latency;
  prometheus::Family<prometheus::Counter>& authentications;
  prometheus::Family<prometheus::Histogram>& replication_latency;
  prometheus::Family<prometheus::Histogram>& replication_delay;
  prometheus::Family<prometheus::Counter>& read_distribution;
  prometheus::Family<prometheus::Gauge>& replication_jobs;
  const std::vector<double> reconciliation_buckets;
  prometheus::Family<prometheus::Histogram>& reconciliation_scheduling;
  prometheus::Family<prometheus::Counter>& reconciliation_jobs;
  prometheus::Family<prometheus::Counter>& content_verification;
  prometheus::Family<prometheus::Counter>& untracked_repositories;
  prometheus::Family<prometheus::Counter>& verification_dequeued;
  prometheus::Family<prometheus::Counter>& verification_completed;
  prometheus::Family<prometheus::Counter>& stale_verification_leases;
  prometheus::Family<prometheus::Counter>& transactions;
  prometheus::Family<prometheus::Histogram>& transactions_delay;
  prometheus::Family<prometheus::Histogram>& subtransactions;
  prometheus::Family<prometheus::Histogram>& voters_per_transaction;
  prometheus::Family<prometheus::Counter>& tx_replications;
  prometheus::Family<prometheus::Counter>& authentication_errors;
  prometheus::Family<prometheus::Counter>& connections;
  prometheus::Family<prometheus::Gauge>& node_healthy;
  prometheus::Family<prometheus::Counter>& primary_elections;
  prometheus::Family<prometheus::Counter>& replication_dead_jobs;
  prometheus::Family<prometheus::Gauge>& tls_expiry;
  prometheus::Family<prometheus::Counter>& notifications_reconnects;
  prometheus::Family<prometheus::Counter>& cache_access;
  std::mutex renderers_mu;
  std::vector<std::function<std::string()>> renderers;  // GUARDED_BY(renderers_mu)
  CounterMemo method_types_memo{method_types};
  CounterMemo authentications_memo{authentications};
  CounterMemo read_distribution_memo{read_distribution};
};

Metrics::Metrics(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Metrics::~Metrics() = default;

std::unique_ptr<http2::CallObserver> NewGrpcServerObserver(GrpcServerMetrics& server,
                                                          GrpcServerMetrics& client);  // call_observer.cc

std::unique_ptr<http2::CallObserver> Metrics::NewCallObserver() {
  return NewGrpcServerObserver(impl_->grpc_server, impl_->grpc_client);
}

void Metrics::ClientCallStarted(std::string_view full_method) {
  impl_->grpc_client.ForMethod(full_method).started->Increment();
}

void Metrics::ClientCallFinished(std::string_view full_method, int code, std::chrono::nanoseconds duration,
                                 uint64_t messages_sent, uint64_t messages_received) {
  GrpcServerMetrics::Method& m = impl_->grpc_client.ForMethod(full_method);
  if (messages_sent > 0) m.sent->Increment(static_cast<double>(messages_sent));
  if (messages_received > 0) m.received->Increment(static_cast<double>(messages_received));
  impl_->grpc_client.Handled(m, code).Increment();
  if (m.handling != nullptr) m.handling->Observe(std::chrono::duration<double>(duration).count());
}

void Metrics::PreregisterMethod(std::string_view full_method) {
  GrpcServerMetrics::Method& method = impl_->grpc_server.ForMethod(full_method);
  for (int code = 0; code <= static_cast<int>(StatusCode::kUnauthenticated); ++code) {
    (void)impl_->grpc_server.Handled(method, code);
  }
}

Counter Metrics::MethodTypeCounter(std::string_view method_type) {
  return Counter(impl_->method_types_memo.Get<1>({"method_type"}, {method_type}));
}

Histogram Metrics::NodeLatency(std::string_view storage) {
  return Histogram(&impl_->node_latency.Add({{"gitaly_storage", std::string(storage)}}, impl_->node_latency_buckets));
}

Counter Metrics::Authentications(bool enforced, std::string_view status) {
  return Counter(impl_->authentications_memo.Get<2>({"enforced", "status"}, {enforced ? "true" : "false", status}));
}

Histogram Metrics::ReplicationLatency(std::string_view type) {
  return Histogram(&impl_->replication_latency.Add({{"type", std::string(type)}}, impl_->node_latency_buckets));
}

Histogram Metrics::ReplicationDelay(std::string_view type) {
  return Histogram(&impl_->replication_delay.Add({{"type", std::string(type)}}, impl_->node_latency_buckets));
}

Counter Metrics::ReadDistribution(std::string_view virtual_storage, std::string_view storage) {
  return Counter(impl_->read_distribution_memo.Get<2>({"virtual_storage", "storage"}, {virtual_storage, storage}));
}

Gauge Metrics::ReplicationJobs(std::string_view virtual_storage, std::string_view storage,
                               std::string_view change_type) {
  return Gauge(&impl_->replication_jobs.Add({{"virtual_storage", std::string(virtual_storage)},
                                             {"gitaly_storage", std::string(storage)},
                                             {"change_type", std::string(change_type)}}));
}

Histogram Metrics::ReconciliationScheduling() {
  return Histogram(&impl_->reconciliation_scheduling.Add({}, impl_->reconciliation_buckets));
}

Counter Metrics::ReconciliationJobs(std::string_view virtual_storage, std::string_view change_type) {
  return Counter(&impl_->reconciliation_jobs.Add(
      {{"virtual_storage", std::string(virtual_storage)}, {"change_type", std::string(change_type)}}));
}

Counter Metrics::UntrackedRepositories(std::string_view virtual_storage, std::string_view storage) {
  return Counter(&impl_->untracked_repositories.Add(
      {{"virtual_storage", std::string(virtual_storage)}, {"storage", std::string(storage)}}));
}

Counter Metrics::ContentVerification(std::string_view virtual_storage, std::string_view storage,
                                     std::string_view result) {
  return Counter(&impl_->content_verification.Add({{"virtual_storage", std::string(virtual_storage)},
                                                   {"storage", std::string(storage)},
                                                   {"result", std::string(result)}}));
}

Counter Metrics::VerificationJobsDequeued(std::string_view virtual_storage, std::string_view storage) {
  return Counter(&impl_->verification_dequeued.Add(
      {{"virtual_storage", std::string(virtual_storage)}, {"storage", std::string(storage)}}));
}

Counter Metrics::VerificationJobsCompleted(std::string_view virtual_storage, std::string_view storage,
                                           std::string_view result) {
  return Counter(&impl_->verification_completed.Add({{"virtual_storage", std::string(virtual_storage)},
                                                     {"storage", std::string(storage)},
                                                     {"result", std::string(result)}}));
}

Counter Metrics::StaleVerificationLeasesReleased() { return Counter(&impl_->stale_verification_leases.Add({})); }

Counter Metrics::TransactionActions(std::string_view action) {
  return Counter(&impl_->transactions.Add({{"action", std::string(action)}}));
}

Histogram Metrics::TransactionDelay(std::string_view action) {
  return Histogram(&impl_->transactions_delay.Add({{"action", std::string(action)}}, impl_->node_latency_buckets));
}

Histogram Metrics::SubtransactionsPerTransaction() {
  return Histogram(&impl_->subtransactions.Add({}, prometheus::Histogram::BucketBoundaries{0, 1, 2, 4, 8, 16, 32}));
}

Histogram Metrics::VotersPerTransaction(std::string_view virtual_storage, size_t max_voters) {
  prometheus::Histogram::BucketBoundaries buckets;
  for (size_t i = 1; i <= std::max<size_t>(max_voters, 1); ++i) buckets.push_back(static_cast<double>(i));
  return Histogram(
      &impl_->voters_per_transaction.Add({{"virtual_storage", std::string(virtual_storage)}}, std::move(buckets)));
}

Counter Metrics::TxReplications(std::string_view reason) {
  return Counter(&impl_->tx_replications.Add({{"reason", std::string(reason)}}));
}

Counter Metrics::AuthenticationErrors(std::string_view version, std::string_view error) {
  return Counter(&impl_->authentication_errors.Add({{"version", std::string(version)}, {"error", std::string(error)}}));
}

Counter Metrics::Connections(std::string_view type) {
  return Counter(&impl_->connections.Add({{"type", std::string(type)}}));
}

Gauge Metrics::NodeHealthy(std::string_view virtual_storage, std::string_view storage) {
  return Gauge(&impl_->node_healthy.Add(
      {{"virtual_storage", std::string(virtual_storage)}, {"storage", std::string(storage)}}));
}

Counter Metrics::PrimaryElections(std::string_view virtual_storage, std::string_view storage) {
  return Counter(&impl_->primary_elections.Add(
      {{"virtual_storage", std::string(virtual_storage)}, {"storage", std::string(storage)}}));
}

Counter Metrics::ReplicationDeadJobs(std::string_view virtual_storage, std::string_view storage,
                                     std::string_view change_type) {
  return Counter(&impl_->replication_dead_jobs.Add({{"virtual_storage", std::string(virtual_storage)},
                                                    {"gitaly_storage", std::string(storage)},
                                                    {"change_type", std::string(change_type)}}));
}

Gauge Metrics::TlsCertificateExpiry() { return Gauge(&impl_->tls_expiry.Add({})); }

Counter Metrics::NotificationsReconnects(std::string_view state) {
  return Counter(&impl_->notifications_reconnects.Add({{"state", std::string(state)}}));
}

Counter Metrics::CacheAccess(std::string_view virtual_storage, std::string_view type) {
  return Counter(&impl_->cache_access.Add(
      {{"virtual_storage", std::string(virtual_storage)}, {"type", std::string(type)}}));
}

void Metrics::AddRenderer(std::function<std::string()> render) {
  std::lock_guard lock(impl_->renderers_mu);
  impl_->renderers.push_back(std::move(render));
}

uint64_t Metrics::HandledCalls() const { return impl_->grpc_server.handled_calls(); }

std::string Metrics::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry.Collect());
  std::vector<std::function<std::string()>> renderers;
  {
    std::lock_guard lock(impl_->renderers_mu);
    renderers = impl_->renderers;
  }
  for (const auto& render : renderers) out << render();
  return out.str();
}

}  // namespace praefect::metrics
