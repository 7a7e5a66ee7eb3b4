#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status_or.h"
#include "protoregistry/method_info.h"
#include "protoregistry/method_spec.h"
#include "protoregistry/method_table.h"

namespace praefect::protoregistry {

// Registry maps a full gRPC method name to what praefect must know to route
// it: operation, scope, streaming shape and the field-number paths of the
// repositories (or storage name) in the first request message.
//
// It is built once at start-up from three sources, in this order:
//
// 1. The packaged Gitaly protos (Debian's golang-gitaly-proto-dev 1.37.0),
//    every service of every file in PackagedProtoFiles() (a list generated
//    from the files proto/CMakeLists.txt compiles; a file whose descriptors
//    are not linked in is an INTERNAL error, never a silent gap), classified
//    from the op_type method option (extension 82303, gitaly.OperationMsg).
//    That version has gaps, filled by these rules:
//    * MUTATOR with REPOSITORY scope: target = target_repository_field.
//    * ACCESSOR: the version carries no target_repository_field (its linter
//      forbade it) and scope REPOSITORY even for ServerInfo. A1: the only
//      top-level field of type gitaly.Repository is the target. A2: no
//      Repository anywhere and a top-level `string storage_name`: storage
//      scope on that field (NamespaceExists). A3: neither: server scope
//      (ServerInfo, FindRemoteRepository). Several candidates: ambiguous.
//    * M1: MUTATOR with SERVER scope (the only other scope this version has)
//      and a top-level `string storage_name`: storage scope on that field,
//      as in newer Gitaly (NamespaceService/*, StorageService/*). Without
//      it: server scope (CloseSession); with a Repository field: ambiguous.
//    * R1: the additional repository is the one gitaly.Repository field,
//      searched through nested non-repeated messages (ObjectPool wraps one
//      at field 1), other than the target. Several: ambiguous.
//    * MAINTENANCE does not exist in this version; it comes from the table.
//    A method the rules call ambiguous must have a table override, else
//    Create fails. Every derivation is recorded in MethodInfo::note.
// 2. The project-owned table, method_table.cc: overrides of packaged
//    methods (each with a reason; an entry that clashes with a packaged method
//    without one is an INTERNAL error, as is an override of a method the
//    packaged protos lack, or one whose paths do not fit the descriptor) and
//    Gitaly methods newer than the packaged protos.
// 3. The operator's [[registry.method]] entries (MethodSpec). They may only
//    add methods; see ParseMethodSpecs for the validation.
//
// The additional repository is a fact about the request, not a routing
// decision: newer Gitaly marks only the object-pool ones (CreateObjectPool
// origin, LinkRepositoryToObjectPool pool, FetchIntoObjectPool origin) as
// additional_repository; the others (CreateFork and FetchSourceBranch
// source_repository, FetchInternalRemote remote_repository, the
// start_repository of UserCommitFiles/UserCherryPick/UserRevert,
// ReplicateRepository source, ...) may live on another node or virtual
// storage and are reached by Gitaly through gitaly-servers metadata.
//
// Immutable after Create; every method is safe to call from any thread.
class Registry {
 public:
  // Builds the registry from the packaged protos, KnownMethodTable() and
  // `extra`. INVALID_ARGUMENT listing every bad operator entry;
  // INTERNAL when the packaged descriptors or the table are inconsistent
  // (a build or programming error, not an operator one).
  [[nodiscard]] static StatusOr<std::unique_ptr<Registry>> Create(std::span<const MethodSpec> extra);

  // As Create, with `table` in place of KnownMethodTable() (for tests).
  [[nodiscard]] static StatusOr<std::unique_ptr<Registry>> CreateWithTable(std::span<const TableEntry> table,
                                                                           std::span<const MethodSpec> extra);

  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The method named `full_name` ("/gitaly.RefService/FindBranch"), or
  // nullptr. One hash lookup, no allocation. The pointer lives as long as
  // the registry.
  const MethodInfo* Lookup(std::string_view full_name) const {
    auto it = index_.find(full_name);
    return it == index_.end() ? nullptr : it->second;
  }

  // UNIMPLEMENTED for a method Lookup does not know: names it and says how
  // to declare it in the configuration.
  static Status UnknownMethodError(std::string_view full_name);

  // Every method, sorted by full name.
  std::span<const MethodInfo> methods() const { return methods_; }

 private:
  // REQUIRES: names are unique.
  explicit Registry(std::vector<MethodInfo> methods);

  const std::vector<MethodInfo> methods_;
  // Keys point into methods_, which never changes after construction.
  std::unordered_map<std::string_view, const MethodInfo*> index_;
};

}  // namespace praefect::protoregistry
