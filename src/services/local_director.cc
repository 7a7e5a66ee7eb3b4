#include "services/local_director.h"

#include <string>
#include <string_view>
#include <utility>

#include "services/repository_exists.h"
#include "services/server_info.h"

namespace praefect::services {
namespace {

constexpr std::string_view kRepositoryExists = "/gitaly.RepositoryService/RepositoryExists";
constexpr std::string_view kServerInfo = "/gitaly.ServerService/ServerInfo";

bool AnsweredHere(std::string_view method) { return method == kRepositoryExists || method == kServerInfo; }

}  // namespace

LocalDirector::LocalDirector(coordinator::Coordinator* coordinator, const nodes::NodeSet* nodes,
                             datastore::Datastore* store, LocalDirectorOptions options)
    : coordinator_(coordinator), nodes_(nodes), store_(store), options_(std::move(options)) {}

Status LocalDirector::Admit(const proxy::CallInfo& call) {
  if (AnsweredHere(call.method)) return coordinator_->Authenticate(*call.metadata);
  return coordinator_->Admit(call);
}

void LocalDirector::Direct(const proxy::CallInfo& call, Done done) {
  if (!AnsweredHere(call.method)) return coordinator_->Direct(call, std::move(done));
  // The views in `call` stay valid until `done` runs (proxy/director.h).
  options_.executor([this, call, done = std::move(done)] {
    StatusOr<std::string> response = call.method == kServerInfo
                                         ? AnswerServerInfo(*nodes_, options_.node_timeout)
                                         : AnswerRepositoryExists(*nodes_, *store_, call.first_message.value_or(""));
    if (!response.ok()) return done(response.status());
    proxy::Route route;
    route.local_response = std::move(response).value();
    done(std::move(route));
  });
}

}  // namespace praefect::services
