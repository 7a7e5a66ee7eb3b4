#include "services/local_director.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "services/praefect_info.h"
#include "services/repository_exists.h"
#include "services/server_info.h"
#include "http2/grpc.h"
#include "wire/rewriter.h"

namespace praefect::services {
namespace {

constexpr std::string_view kRepositoryExists = "/gitaly.RepositoryService/RepositoryExists";
constexpr std::string_view kServerInfo = "/gitaly.ServerService/ServerInfo";
constexpr std::string_view kHealthCheck = "/grpc.health.v1.Health/Check";
constexpr std::string_view kHealthWatch = "/grpc.health.v1.Health/Watch";
constexpr std::string_view kDataloss = "/gitaly.PraefectInfoService/Dataloss";
// What a Dataloss call holds at most of messages its client has not taken
// (two of its messages of about 1 MiB).
constexpr size_t kDatalossHeld = 2 * 1024 * 1024 + 4096;

bool AnsweredHere(std::string_view method) {
  return method == kRepositoryExists || method == kServerInfo || IsPraefectInfoMethod(method) ||
         IsRefTransactionMethod(method);
}
bool IsHealth(std::string_view method) { return method == kHealthCheck || method == kHealthWatch; }

// grpc.health.v1.HealthCheckResponse { status = 1 }: SERVING is 1,
// NOT_SERVING 2.
std::string HealthResponse(bool serving) { return serving ? std::string("\x08\x01", 2) : std::string("\x08\x02", 2); }

// HealthCheckRequest { string service = 1 }: "" (the server as a whole) is
// the only service praefect knows.
StatusOr<bool> AsksForTheServer(std::string_view request) {
  static const std::vector<uint32_t> kService = {1};
  auto service = wire::ReadStringField(request, kService);
  if (!service.ok()) return service.status();
  return !service->has_value() || (*service)->empty();
}

}  // namespace

LocalDirector::LocalDirector(coordinator::Coordinator* coordinator, const nodes::NodeSet* nodes,
                             datastore::Datastore* store, LocalDirectorOptions options)
    : coordinator_(coordinator), nodes_(nodes), store_(store), options_(std::move(options)) {}

Status LocalDirector::Admit(const http2::CallInfo& call) {
  if (IsHealth(call.method)) return Status::Ok();
  if (AnsweredHere(call.method)) return coordinator_->Authenticate(*call.metadata);
  return coordinator_->Admit(call);
}

void LocalDirector::Direct(const http2::CallInfo& call, Done done) {
  if (IsHealth(call.method)) {
    auto server = AsksForTheServer(call.first_message.value_or(""));
    if (!server.ok()) return done(server.status());
    if (!*server) return done(NotFound("unknown service: praefect's health service knows only \"\" (the server)"));
    auto route = std::make_unique<http2::Route>();
    route->local_response.emplace(HealthResponse(serving_.load()));
    route->keep_open = call.method == kHealthWatch;
    return done(std::move(*route));
  }
  if (!AnsweredHere(call.method)) return coordinator_->Direct(call, std::move(done));
  if (IsRefTransactionMethod(call.method)) return AnswerRefTransaction(call, std::move(done));
  // The views in `call` stay valid until `done` runs (proxy/director.h).
  options_.executor([this, call, done = std::move(done)] {
    if (call.method == kDataloss) return StreamDataloss(call, done);
    if (IsPraefectInfoMethod(call.method)) {
      PraefectInfoDeps deps{nodes_, store_, options_.operator_store, options_.health_window, options_.node_timeout};
      auto responses = AnswerPraefectInfo(deps, call.method, call.first_message.value_or(""));
      if (!responses.ok()) return done(responses.status());
      http2::Route route;
      route.local_response = std::move(responses->front());
      route.more_local_responses.assign(std::make_move_iterator(responses->begin() + 1),
                                        std::make_move_iterator(responses->end()));
      return done(std::move(route));
    }
    StatusOr<std::string> response = call.method == kServerInfo
                                         ? AnswerServerInfo(*nodes_, options_.node_timeout)
                                         : AnswerRepositoryExists(*nodes_, *store_, call.first_message.value_or(""));
    if (!response.ok()) return done(response.status());
    http2::Route route;
    route.local_response = std::move(response).value();
    done(std::move(route));
  });
}

void LocalDirector::AnswerRefTransaction(const http2::CallInfo& call, Done done) {
  if (options_.ref_transactions == nullptr)
    return done(Status(StatusCode::kUnimplemented, "this praefect runs no transactions"));
  auto deadline = std::chrono::steady_clock::time_point::max();
  if (auto timeout = call.Get("grpc-timeout")) {
    if (auto t = http2::rpc::ParseTimeout(*timeout))
      deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(*t);
  }
  // The request is copied: the vote outlives the call's views only until
  // `done`, but runs on a thread of its own.
  options_.ref_transactions->Answer(call.method, std::string(call.first_message.value_or("")), deadline,
                                    [done = std::move(done)](StatusOr<std::string> response) {
                                      if (!response.ok()) return done(response.status());
                                      http2::Route route;
                                      route.local_response = std::move(response).value();
                                      done(std::move(route));
                                    });
}

void LocalDirector::StreamDataloss(const http2::CallInfo& call, const Done& done) {
  PraefectInfoDeps deps{nodes_, store_, options_.operator_store, options_.health_window, options_.node_timeout};
  // The route is given with the first message, so that an error before
  // any (a bad request, no database) is a plain error response.
  std::shared_ptr<http2::LocalStream> stream;
  Status st = services::StreamDataloss(deps, call.first_message.value_or(""), [&](std::string message) {
    if (stream == nullptr) {
      stream = std::make_shared<http2::LocalStream>(kDatalossHeld);
      http2::Route route;
      route.local_stream = stream;
      done(std::move(route));
    }
    return stream->Push(std::move(message));
  });
  if (stream == nullptr) return done(st.ok() ? Internal("Dataloss answered no message") : st);
  stream->Finish(std::move(st));
}

}  // namespace praefect::services
