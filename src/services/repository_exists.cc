#include "services/repository_exists.h"

#include <cstdint>
#include <vector>

#include "common/quote.h"
#include "coordinator/request_paths.h"
#include "repository-service.pb.h"
#include "wire/rewriter.h"

namespace praefect::services {

StatusOr<std::string> AnswerRepositoryExists(const nodes::NodeSet& nodes, datastore::Datastore& store,
                                             std::string_view message) {
  static constexpr std::string_view kMethod = "/gitaly.RepositoryService/RepositoryExists";
  static const std::vector<uint32_t> kRepositoryField = {1};
  auto repo = wire::ReadRepository(message, kRepositoryField);
  if (!repo.ok()) return repo.status();
  if (Status st = coordinator::ValidateTarget(kMethod, *repo); !st.ok()) return st;
  if (nodes.Find(repo->storage_name) == nullptr)
    return InvalidArgument("virtual storage " + QuoteForMessage(repo->storage_name) + " does not exist (" +
                           std::string(kMethod) + "): use one of the virtual storages in praefect's config.toml");
  auto found = store.GetRepository(repo->storage_name, repo->relative_path);
  if (!found.ok()) return found.status();
  gitaly::RepositoryExistsResponse answer;
  answer.set_exists(found->has_value());
  return answer.SerializeAsString();
}

}  // namespace praefect::services
