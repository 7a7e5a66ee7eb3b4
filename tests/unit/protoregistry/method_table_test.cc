#include "protoregistry/method_table.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "protoregistry/registry.h"
#include "test_support.h"

// Specs and table entries name only the fields they set; GCC 12 warns about
// that even for designated initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace praefect::protoregistry {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::unique_ptr<Registry> MustCreate() {
  StatusOr<std::unique_ptr<Registry>> registry = Registry::Create({});
  assert_status_ok(registry.status());
  return std::move(registry).value();
}

struct Expected {
  const char* name;
  Operation operation;
  Scope scope;
  Shape shape;
  const char* target;
  const char* additional;
  const char* storage;
  Source source;
};

// What praefect must route or call, written down independently of the table.
const Expected kExpected[] = {
    {"/gitaly.RepositoryService/ReplicateRepository", Operation::kMutator, Scope::kRepository, Shape::kUnary, "1",
     "2", "", Source::kTable},
    {"/gitaly.RepositoryService/RemoveRepository", Operation::kMutator, Scope::kRepository, Shape::kUnary, "1", "",
     "", Source::kTable},
    {"/gitaly.RepositoryService/OptimizeRepository", Operation::kMaintenance, Scope::kRepository, Shape::kUnary,
     "1", "", "", Source::kTable},
    {"/gitaly.RepositoryService/PruneUnreachableObjects", Operation::kMaintenance, Scope::kRepository,
     Shape::kUnary, "1", "", "", Source::kTable},
    {"/gitaly.RefTransaction/VoteTransaction", Operation::kMutator, Scope::kRepository, Shape::kUnary, "1", "", "",
     Source::kTable},
    {"/gitaly.InternalGitaly/WalkRepos", Operation::kAccessor, Scope::kStorage, Shape::kServerStream, "", "", "1",
     Source::kTable},
    {"/gitaly.ServerService/DiskStatistics", Operation::kAccessor, Scope::kServer, Shape::kUnary, "", "", "",
     Source::kTable},
    {"/gitaly.SmartHTTPService/PostUploadPackWithSidechannel", Operation::kAccessor, Scope::kRepository,
     Shape::kUnary, "1", "", "", Source::kTable},
    {"/gitaly.CommitService/CheckObjectsExist", Operation::kAccessor, Scope::kRepository, Shape::kBidiStream, "1",
     "", "", Source::kTable},
    // Packaged, present without the table.
    {"/gitaly.RepositoryService/GetObjectDirectorySize", Operation::kAccessor, Scope::kRepository, Shape::kUnary,
     "1", "", "", Source::kPackaged},
    // Overrides.
    {"/gitaly.RepositoryService/GarbageCollect", Operation::kMaintenance, Scope::kRepository, Shape::kUnary, "1",
     "", "", Source::kTableOverride},
    {"/gitaly.RepositoryService/CreateBundle", Operation::kAccessor, Scope::kRepository, Shape::kServerStream, "1",
     "", "", Source::kTableOverride},
    {"/gitaly.ObjectPoolService/LinkRepositoryToObjectPool", Operation::kMutator, Scope::kRepository,
     Shape::kUnary, "2", "1.1", "", Source::kTableOverride},
    {"/gitaly.ObjectPoolService/FetchIntoObjectPool", Operation::kMutator, Scope::kRepository, Shape::kUnary,
     "2.1", "1", "", Source::kTableOverride},
};

// Every deliberate override; changing the set must be a conscious decision.
const std::set<std::string> kOverrides = {
    "/gitaly.RepositoryService/RepositorySize",   "/gitaly.RepositoryService/GetArchive",
    "/gitaly.RepositoryService/Fsck",             "/gitaly.RepositoryService/CreateBundle",
    "/gitaly.SSHService/SSHUploadArchive",        "/gitaly.SmartHTTPService/InfoRefsReceivePack",
    "/gitaly.RepositoryService/RepackIncremental", "/gitaly.RepositoryService/RepackFull",
    "/gitaly.RepositoryService/GarbageCollect",   "/gitaly.RepositoryService/Cleanup",
    "/gitaly.RefService/PackRefs",                "/gitaly.ObjectPoolService/LinkRepositoryToObjectPool",
    "/gitaly.ObjectPoolService/FetchIntoObjectPool", "/gitaly.StorageService/ListDirectories",
    "/gitaly.RepositoryService/CloneFromPoolInternal", "/gitaly.RepositoryService/PreFetch",
};

void ExpectedMethodsArePresent(void** /*state*/) {
  auto registry = MustCreate();
  for (const Expected& e : kExpected) {
    const MethodInfo* info = registry->Lookup(e.name);
    expect_that(info != nullptr, std::string(e.name) + " to be registered");
    const std::string what = std::string(e.name) + ": ";
    expect_that(info->operation == e.operation, what + "operation " + std::string(OperationName(e.operation)));
    expect_that(info->scope == e.scope, what + "scope " + std::string(ScopeName(e.scope)));
    expect_that(info->shape == e.shape, what + "shape " + std::string(ShapeName(e.shape)));
    expect_that(FormatFieldPath(info->target_repository) == e.target, what + "target \"" + e.target + "\"");
    expect_that(FormatFieldPath(info->additional_repository) == e.additional,
                what + "additional \"" + e.additional + "\"");
    expect_that(FormatFieldPath(info->storage) == e.storage, what + "storage \"" + e.storage + "\"");
    expect_that(info->source == e.source, what + "source " + std::string(SourceName(e.source)));
  }
}

void EveryTableEntryIsRegisteredAsWritten(void** /*state*/) {
  auto registry = MustCreate();
  std::set<std::string> overrides;
  for (const TableEntry& entry : KnownMethodTable()) {
    const std::string name(entry.name);
    const MethodInfo* info = registry->Lookup(name);
    expect_that(info != nullptr, name + " to be registered");
    expect_that(info->operation == entry.operation && info->scope == entry.scope && info->shape == entry.shape,
                name + " to keep the table's operation, scope and shape");
    expect_that(FormatFieldPath(info->target_repository) == entry.target_repository &&
                    FormatFieldPath(info->additional_repository) == entry.additional_repository &&
                    FormatFieldPath(info->storage) == entry.storage,
                name + " to keep the table's paths");
    if (entry.override_reason.empty()) {
      expect_that(info->source == Source::kTable, name + " to be a table method");
    } else {
      expect_that(info->source == Source::kTableOverride, name + " to be an override");
      expect_that(Contains(info->note, std::string(entry.override_reason)), name + " to carry its reason");
      overrides.insert(name);
    }
  }
  expect_that(overrides == kOverrides, "the table to override exactly the expected packaged methods");
}

std::vector<TableEntry> TableWith(TableEntry extra) {
  std::vector<TableEntry> table(KnownMethodTable().begin(), KnownMethodTable().end());
  table.push_back(extra);
  return table;
}

std::vector<TableEntry> TableWithReplaced(std::string_view name, TableEntry replacement) {
  std::vector<TableEntry> table(KnownMethodTable().begin(), KnownMethodTable().end());
  auto it = std::find_if(table.begin(), table.end(), [&](const TableEntry& e) { return e.name == name; });
  assert_true(it != table.end());
  *it = replacement;
  return table;
}

void ExpectInternal(const std::vector<TableEntry>& table, const std::vector<std::string>& fragments) {
  StatusOr<std::unique_ptr<Registry>> registry = Registry::CreateWithTable(table, {});
  expect_that(!registry.ok(), "Create to fail");
  expect_that(registry.status().code() == StatusCode::kInternal, "INTERNAL: " + registry.status().ToString());
  for (const std::string& fragment : fragments) {
    expect_that(Contains(registry.status().message(), fragment),
                "message containing '" + fragment + "', got: " + registry.status().message());
  }
}

void ClashWithPackagedMethodIsAnError(void** /*state*/) {
  ExpectInternal(TableWith({.name = "/gitaly.RepositoryService/CreateRepository", .operation = Operation::kMutator,
                            .scope = Scope::kRepository, .target_repository = "1"}),
                 {"table entry /gitaly.RepositoryService/CreateRepository",
                  "the packaged protos already define this method; give override_reason"});
}

void OverrideOfUnknownMethodIsAnError(void** /*state*/) {
  ExpectInternal(TableWith({.name = "/gitaly.RepositoryService/NoSuchMethod", .operation = Operation::kMutator,
                            .scope = Scope::kRepository, .target_repository = "1", .override_reason = "because"}),
                 {"/gitaly.RepositoryService/NoSuchMethod", "packaged protos do not define the method"});
}

void OverrideMustFitTheDescriptor(void** /*state*/) {
  ExpectInternal(TableWithReplaced("/gitaly.RepositoryService/GetArchive",
                                   {.name = "/gitaly.RepositoryService/GetArchive", .operation = Operation::kAccessor,
                                    .scope = Scope::kRepository, .shape = Shape::kServerStream,
                                    .target_repository = "2", .override_reason = "test"}),
                 {"/gitaly.RepositoryService/GetArchive", "target repository \"2\" is not a gitaly.Repository field"});
  ExpectInternal(TableWithReplaced("/gitaly.RepositoryService/GetArchive",
                                   {.name = "/gitaly.RepositoryService/GetArchive", .operation = Operation::kAccessor,
                                    .scope = Scope::kRepository, .shape = Shape::kUnary, .target_repository = "1",
                                    .override_reason = "test"}),
                 {"shape unary but the method is server_stream"});
  ExpectInternal(TableWithReplaced("/gitaly.StorageService/ListDirectories",
                                   {.name = "/gitaly.StorageService/ListDirectories",
                                    .operation = Operation::kAccessor, .scope = Scope::kStorage,
                                    .shape = Shape::kServerStream, .storage = "2", .override_reason = "test"}),
                 {"storage \"2\" is not a string field"});
}

void BadTableEntriesAreErrors(void** /*state*/) {
  ExpectInternal(TableWith({.name = "/gitaly.X/Y", .operation = Operation::kMutator, .scope = Scope::kRepository,
                            .target_repository = "1..2"}),
                 {"table entry /gitaly.X/Y", "has an empty segment"});
  ExpectInternal(TableWith({.name = "/gitaly.X/Y", .operation = Operation::kMaintenance, .scope = Scope::kServer}),
                 {"operation \"maintenance\" needs scope \"repository\""});
  std::vector<TableEntry> twice = TableWith(KnownMethodTable()[KnownMethodTable().size() - 1]);
  ExpectInternal(twice, {"listed twice in the table"});
}

void AmbiguousPackagedMethodsNeedTheTable(void** /*state*/) {
  // Without the table, the rules cannot classify these, and say so.
  ExpectInternal({}, {"packaged method /gitaly.RepositoryService/CreateBundle: SERVER-scoped MUTATOR",
                      "packaged method /gitaly.RepositoryService/CloneFromPoolInternal: gitaly.Repository fields "
                      "\"2.1\", \"3\" besides the target",
                      "packaged method /gitaly.RepositoryService/PreFetch", "method_table.cc must override it"});
}

}  // namespace
}  // namespace praefect::protoregistry

int main() {
  using namespace praefect::protoregistry;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ExpectedMethodsArePresent),
      cmocka_unit_test(EveryTableEntryIsRegisteredAsWritten),
      cmocka_unit_test(ClashWithPackagedMethodIsAnError),
      cmocka_unit_test(OverrideOfUnknownMethodIsAnError),
      cmocka_unit_test(OverrideMustFitTheDescriptor),
      cmocka_unit_test(BadTableEntriesAreErrors),
      cmocka_unit_test(AmbiguousPackagedMethodsNeedTheTable),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
