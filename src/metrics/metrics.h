#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http2/proxy_call.h"

// prometheus-cpp stays private to this module: other modules see these
// forward declarations and the typed handles below, never its headers.
namespace prometheus {
class Gauge;
class Counter;
class Histogram;
}  // namespace prometheus

namespace praefect::metrics {

// The grpc_type label of go-grpc-prometheus.
enum class GrpcType {
  kUnary,
  kClientStream,
  kServerStream,
  kBidiStream,
};

// "unary", "client_stream", "server_stream", "bidi_stream".
std::string_view GrpcTypeName(GrpcType type);

// Go's name of a gRPC status code as go-grpc-prometheus puts it in grpc_code
// ("OK", "Canceled", "InvalidArgument", ...; "Code(17)" beyond the known ones).
std::string GrpcCodeName(int code);

// The streaming shape of a method, by full name ("/gitaly.RepositoryService/
// RepositoryExists"). praefect serves every method through one generic
// (bidi) handler, so the shape comes from the method registry, not from gRPC.
// nullopt: a method praefect does not know. Its calls are counted under one
// series (grpc_service="unknown", grpc_method="unknown"), never under the name
// the client sent: a client inventing names must not create series without
// bound.
using GrpcTypeLookup = std::function<std::optional<GrpcType>(std::string_view full_method)>;

struct Options {
  // Buckets (seconds) of grpc_server_handling_seconds,
  // gitaly_praefect_node_latency and gitaly_praefect_transactions_delay_seconds:
  // Praefect's [prometheus] grpc_latency_buckets. Empty: no
  // grpc_server_handling_seconds at all (as Praefect), and the other two get
  // client_golang's DefBuckets (as Go does for a histogram declared with nil
  // buckets).
  std::vector<double> grpc_latency_buckets;
  // Called once per distinct known method (the answer is cached), from the
  // data plane's loops. Empty: every method counted under its own name, as
  // bidi_stream (for tests).
  GrpcTypeLookup grpc_type;
  // Buckets (seconds) of gitaly_praefect_reconciliation_scheduling_seconds:
  // [reconciliation] histogram_buckets (empty: client_golang's DefBuckets).
  std::vector<double> reconciliation_buckets;
};

// A counter series. Cheap to copy; valid as long as the Metrics that made it.
// Thread-safe.
class Counter {
 public:
  void Increment(double by = 1.0);
  double Value() const;

 private:
  friend class Metrics;
  explicit Counter(prometheus::Counter* counter) : counter_(counter) {}
  prometheus::Counter* counter_;
};

// A histogram series. Cheap to copy; valid as long as the Metrics that made
// it. Thread-safe.
class Histogram {
 public:
  void Observe(double value);
  void ObserveDuration(std::chrono::nanoseconds duration) {
    Observe(std::chrono::duration<double>(duration).count());
  }

 private:
  friend class Metrics;
  explicit Histogram(prometheus::Histogram* histogram) : histogram_(histogram) {}
  prometheus::Histogram* histogram_;
};

// A gauge series. Cheap to copy; valid as long as the Metrics that made it.
// Thread-safe.
class Gauge {
 public:
  void Increment(double by = 1.0);
  void Decrement(double by = 1.0);
  void Set(double value);
  double Value() const;

 private:
  friend class Metrics;
  explicit Gauge(prometheus::Gauge* gauge) : gauge_(gauge) {}
  prometheus::Gauge* gauge_;
};

// praefect's Prometheus metrics: one registry holding go-grpc-prometheus's
// server metrics and Praefect's gitaly_praefect_* series, rendered in the
// Prometheus text format. Thread-safe. Not copyable.
class Metrics {
 public:
  explicit Metrics(Options options);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // What the data plane reports of each call, kept as go-grpc-prometheus
  // keeps it: grpc_server_started_total, grpc_server_handled_total,
  // grpc_server_msg_received_total, grpc_server_msg_sent_total and, with
  // buckets, grpc_server_handling_seconds. Thread-safe.
  // REQUIRES: this Metrics outlives the observer.
  std::unique_ptr<http2::CallObserver> NewCallObserver();

  // grpc_client_* of the calls praefect makes to the nodes itself (health
  // checks, replication, verification; see client_interceptor.h): started,
  // then finished with its code, time and messages each way. The proxied
  // calls' streams are counted by NewCallObserver. Thread-safe.
  void ClientCallStarted(std::string_view full_method);
  void ClientCallFinished(std::string_view full_method, int code, std::chrono::nanoseconds duration,
                          uint64_t messages_sent, uint64_t messages_received);

  // Creates the zero-valued series of a method (every grpc_code included), as
  // go-grpc-prometheus does for registered services, so that rate() works from
  // the first call on.
  void PreregisterMethod(std::string_view full_method);

  // gitaly_praefect_method_types{method_type}: "accessor", "mutator", ...
  Counter MethodTypeCounter(std::string_view method_type);

  // gitaly_praefect_node_latency{gitaly_storage}: health-check latency of a
  // storage node, in seconds.
  Histogram NodeLatency(std::string_view storage);

  // gitaly_authentications_total{enforced,status}, as Gitaly's auth
  // middleware counts: enforced "true"/"false", status "ok",
  // "unauthenticated" (no token) or "denied" (a wrong token). With
  // auth.transitioning, enforced="false" counts the calls let through.
  Counter Authentications(bool enforced, std::string_view status);

  // gitaly_authentication_errors_total{version,error}: v2 tokens refused,
  // by Gitaly's error label ("wrong hmac signature", ...).
  Counter AuthenticationErrors(std::string_view version, std::string_view error);

  // gitaly_praefect_replication_latency{type}: seconds from a replication
  // job's start to its end; type is the change type ("update", ...).
  Histogram ReplicationLatency(std::string_view type);
  // gitaly_praefect_replication_delay{type}: seconds from a job's creation
  // to its start.
  Histogram ReplicationDelay(std::string_view type);
  // gitaly_praefect_replication_jobs{virtual_storage,gitaly_storage,change_type}:
  // replication jobs in progress.
  Gauge ReplicationJobs(std::string_view virtual_storage, std::string_view storage, std::string_view change_type);

  // gitaly_praefect_read_distribution{virtual_storage,storage}: reads routed
  // to each storage.
  Counter ReadDistribution(std::string_view virtual_storage, std::string_view storage);

  // gitaly_praefect_reconciliation_scheduling_seconds: seconds of each
  // reconciliation round this praefect ran. The series exists once the
  // reconciler asks for it (reconciliation on), as in Praefect.
  Histogram ReconciliationScheduling();
  // gitaly_praefect_reconciliation_jobs_total{virtual_storage,change_type}:
  // replication jobs the reconciliation rounds of this praefect scheduled
  // (praefect's own series).
  Counter ReconciliationJobs(std::string_view virtual_storage, std::string_view change_type);

  // gitaly_praefect_content_verification_replicas_total{virtual_storage,
  // storage,result}: secondary replicas whose checksum content verification
  // compared with the primary's: result "match", "mismatch" (marked
  // outdated and repaired from the primary), "skipped" (written to
  // meanwhile, or unhealthy), "error" (praefect's own series).
  Counter ContentVerification(std::string_view virtual_storage, std::string_view storage, std::string_view result);
  // gitaly_praefect_untracked_repositories_total{virtual_storage,storage}:
  // repositories repository cleanup found on a node's disk that the
  // database does not know (reported, never deleted; praefect's own series).
  Counter UntrackedRepositories(std::string_view virtual_storage, std::string_view storage);
  // gitaly_praefect_verification_jobs_dequeued_total{virtual_storage,storage}:
  // replicas this praefect leased for background verification.
  Counter VerificationJobsDequeued(std::string_view virtual_storage, std::string_view storage);
  // gitaly_praefect_verification_jobs_completed_total{virtual_storage,storage,result}:
  // their checks by result: "valid" (the replica exists), "invalid" (it does
  // not) or "error" (the node did not answer).
  Counter VerificationJobsCompleted(std::string_view virtual_storage, std::string_view storage,
                                    std::string_view result);
  // gitaly_praefect_stale_verification_leases_released_total: leases of dead
  // verifiers this praefect released. The verifier creates the three
  // families' series when it starts (verification on), as in Praefect.
  Counter StaleVerificationLeasesReleased();

  // gitaly_praefect_transactions_total{action}: what reference transactions
  // did: "registered" (+ the number of voters), "started" (a vote arrived),
  // then per vote "committed", "failed", "canceled", "stopped" or
  // "invalid", and "stopped" once per StopTransaction.
  Counter TransactionActions(std::string_view action);
  // gitaly_praefect_transactions_delay_seconds{action}: seconds a vote
  // waited for its answer (action "vote"); buckets of grpc_latency_buckets.
  Histogram TransactionDelay(std::string_view action);
  // gitaly_praefect_subtransactions_per_transaction_total: subtransactions of
  // each finished transaction (buckets 0, 1, 2, 4, 8, 16, 32).
  Histogram SubtransactionsPerTransaction();
  // gitaly_praefect_voters_per_transaction_total{virtual_storage}: voters of
  // each registered transaction (the primary and its secondaries); buckets
  // 1, 2, ... up to `max_voters` (the virtual storage's nodes).
  Histogram VotersPerTransaction(std::string_view virtual_storage, size_t max_voters);
  // gitaly_praefect_tx_replications_total{reason}: replicas of transactional
  // writes by what became of them: "updated" (voted and committed, no job)
  // or the reason of their replication job: "outdated", "no-votes",
  // "missing-tx-state", "primary-not-committed", "node-error-status",
  // "node-not-committed".
  Counter TxReplications(std::string_view reason);

  // gitaly_praefect_connections_total{type}: client connections accepted,
  // type "tcp", "tls" or "unix" (the listener's kind).
  Counter Connections(std::string_view type);
  // gitaly_praefect_node_healthy{virtual_storage,storage}: 1 while this
  // praefect's own health checks see the node healthy, else 0
  // (praefect's own series).
  Gauge NodeHealthy(std::string_view virtual_storage, std::string_view storage);
  // gitaly_praefect_primary_elections_total{virtual_storage,storage}:
  // primaries this praefect elected, by the storage elected ("none" when a
  // repository was left without one; praefect's own series).
  Counter PrimaryElections(std::string_view virtual_storage, std::string_view storage);
  // gitaly_praefect_replication_dead_jobs_total{virtual_storage,gitaly_storage,
  // change_type}: replication jobs given up after their last attempt
  // (praefect's own series).
  Counter ReplicationDeadJobs(std::string_view virtual_storage, std::string_view storage,
                              std::string_view change_type);
  // gitaly_praefect_tls_certificate_expiry_timestamp_seconds: when the
  // certificate of the TLS listeners expires, Unix time (praefect's own
  // series; exists only with a TLS listener).
  Gauge TlsCertificateExpiry();
  // gitaly_praefect_notifications_reconnects_total{state}: the LISTEN
  // connection of the read cache's invalidations, "connected" or
  // "disconnected".
  Counter NotificationsReconnects(std::string_view state);
  // gitaly_praefect_uptodate_storages_cache_access_total{virtual_storage,type}:
  // the read cache: "hit", "miss", "populate", "evict".
  Counter CacheAccess(std::string_view virtual_storage, std::string_view type);

  // Text in the exposition format appended to every Render(), produced at
  // scrape time (process_* series, ...). Called from the scraping thread,
  // possibly from several at once: must be thread-safe. Register before
  // the first Render().
  void AddRenderer(std::function<std::string()> render);

  // Calls the data plane handled since start (the sum of
  // grpc_server_handled_total), read without walking the registry.
  uint64_t HandledCalls() const;

  // Every series in the Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace praefect::metrics
