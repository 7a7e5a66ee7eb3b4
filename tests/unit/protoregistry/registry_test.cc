#include "protoregistry/registry.h"

#include <string>
#include <vector>

#include "test_support.h"

// Specs and table entries name only the fields they set; GCC 12 warns about
// that even for designated initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace praefect::protoregistry {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::unique_ptr<Registry> MustCreate(std::span<const MethodSpec> extra = {}) {
  StatusOr<std::unique_ptr<Registry>> registry = Registry::Create(extra);
  assert_status_ok(registry.status());
  return std::move(registry).value();
}

void LooksUpKnownMethods(void** /*state*/) {
  auto registry = MustCreate();
  const MethodInfo* info = registry->Lookup("/gitaly.RepositoryService/CreateRepository");
  expect_that(info != nullptr, "CreateRepository to be known");
  expect_that(info->full_name == "/gitaly.RepositoryService/CreateRepository", "the entry to carry its name");
  expect_that(info->operation == Operation::kMutator && info->target_repository == FieldPath{1},
              "CreateRepository to be a mutator on field 1");

  // The hot path passes a view into a larger buffer (the :path header).
  const std::string buffer = "/gitaly.RefService/FindBranchXYZ";
  const MethodInfo* sliced = registry->Lookup(std::string_view(buffer).substr(0, buffer.size() - 3));
  expect_that(sliced != nullptr && sliced->full_name == "/gitaly.RefService/FindBranch",
              "lookup by a non-terminated view");
}

void UnknownMethodsAreNotGuessed(void** /*state*/) {
  auto registry = MustCreate();
  for (const char* name : {"/gitaly.RepositoryService/NoSuchMethod", "", "/gitaly.RepositoryService/CreateRepositor",
                           "/gitaly.RepositoryService/CreateRepository/", "gitaly.RepositoryService/CreateRepository",
                           "/gitaly.repositoryservice/createrepository"}) {
    expect_that(registry->Lookup(name) == nullptr, std::string("\"") + name + "\" to be unknown");
  }
  Status status = Registry::UnknownMethodError("/gitaly.RepositoryService/NoSuchMethod");
  expect_that(status.code() == StatusCode::kUnimplemented, "UNIMPLEMENTED");
  expect_that(Contains(status.message(), "\"/gitaly.RepositoryService/NoSuchMethod\""), "the method to be named");
  expect_that(Contains(status.message(), "[[registry.method]]"), "how to declare it: " + status.message());
  expect_that(Contains(status.message(), "name = \"/gitaly.RepositoryService/NoSuchMethod\""),
              "a ready-to-edit declaration");
}

// Path-like strings that are not a Repository are named, with how messages
// call them, and checked against the packaged descriptors (string fields).
void PathFieldsAttached(void** /*state*/) {
  auto registry = MustCreate();
  const MethodInfo* rename = registry->Lookup("/gitaly.RepositoryService/RenameRepository");
  expect_that(rename != nullptr && rename->path_fields.size() == 1 && rename->path_fields[0].path == FieldPath{2} &&
                  rename->path_fields[0].what == "destination relative path",
              "RenameRepository's destination (field 2)");
  const MethodInfo* ns = registry->Lookup("/gitaly.NamespaceService/RenameNamespace");
  expect_that(ns != nullptr && ns->path_fields.size() == 2 && ns->path_fields[0].path == FieldPath{2} &&
                  ns->path_fields[1].path == FieldPath{3},
              "RenameNamespace's from (2) and to (3)");
  for (const char* name : {"/gitaly.NamespaceService/AddNamespace", "/gitaly.NamespaceService/RemoveNamespace",
                           "/gitaly.NamespaceService/NamespaceExists"}) {
    const MethodInfo* info = registry->Lookup(name);
    expect_that(info != nullptr && info->path_fields.size() == 1 && info->path_fields[0].path == FieldPath{2},
                std::string(name) + ": name (field 2)");
  }
  const MethodInfo* plain = registry->Lookup("/gitaly.RepositoryService/CreateRepository");
  expect_that(plain != nullptr && plain->path_fields.empty(), "no path field elsewhere");
}

void IteratesAllMethodsSorted(void** /*state*/) {
  auto registry = MustCreate();
  std::span<const MethodInfo> methods = registry->methods();
  // 149 packaged rpcs in golang-gitaly-proto-dev 1.37.0 plus the table; the
  // exact packaged count is checked in packaged_methods_test.
  expect_that(methods.size() > 149, "more methods than the packaged protos alone");
  for (size_t i = 0; i < methods.size(); ++i) {
    if (i > 0) expect_that(methods[i - 1].full_name < methods[i].full_name, "sorted, unique names");
    expect_that(registry->Lookup(methods[i].full_name) == &methods[i], methods[i].full_name + " to index itself");
  }
}

void AddsOperatorMethods(void** /*state*/) {
  std::vector<MethodSpec> extra = {
      {.name = "/gitaly.RepositoryService/FooBar", .operation = "mutator", .scope = "repository",
       .target_repository_field = "1"},
      {.name = "/gitaly.StorageService/ListThings", .operation = "accessor", .scope = "storage",
       .storage_field = "1", .shape = "server_stream"},
  };
  auto registry = MustCreate(extra);
  const MethodInfo* foo = registry->Lookup("/gitaly.RepositoryService/FooBar");
  expect_that(foo != nullptr && foo->source == Source::kOperator, "FooBar to be added as an operator method");
  expect_that(foo->operation == Operation::kMutator && foo->target_repository == FieldPath{1}, "FooBar mutator on 1");
  const MethodInfo* list = registry->Lookup("/gitaly.StorageService/ListThings");
  expect_that(list != nullptr && list->scope == Scope::kStorage && list->shape == Shape::kServerStream,
              "ListThings storage-scoped, server_stream");
  expect_that(registry->Lookup("/gitaly.RepositoryService/CreateRepository") != nullptr,
              "packaged methods still present");
}

void RejectsOperatorMethodsThatClash(void** /*state*/) {
  std::vector<MethodSpec> extra = {
      {.name = "/gitaly.RepositoryService/CreateRepository", .operation = "accessor", .scope = "repository",
       .target_repository_field = "1"},
      {.name = "/gitaly.RepositoryService/ReplicateRepository", .operation = "mutator", .scope = "repository",
       .target_repository_field = "1"},
      {.name = "/gitaly.RepositoryService/GarbageCollect", .operation = "mutator", .scope = "repository",
       .target_repository_field = "1"},
      {.name = "/gitaly.S/Fine", .operation = "accessor", .scope = "server"},
      {.name = "/gitaly.S/Bad", .operation = "accessor", .scope = "repository"},
  };
  StatusOr<std::unique_ptr<Registry>> registry = Registry::Create(extra);
  expect_that(registry.status().code() == StatusCode::kInvalidArgument, "INVALID_ARGUMENT");
  const std::string& message = registry.status().message();
  expect_that(Contains(message, "(4 of 5)"), "four bad entries: " + message);
  expect_that(Contains(message, "entry 1 (name = \"/gitaly.RepositoryService/CreateRepository\"): praefect already "
                                "knows this method (packaged"),
              "clash with a packaged method: " + message);
  expect_that(Contains(message, "entry 2 (name = \"/gitaly.RepositoryService/ReplicateRepository\"): praefect "
                                "already knows this method (table"),
              "clash with a table method");
  expect_that(Contains(message, "entry 3 (name = \"/gitaly.RepositoryService/GarbageCollect\"): praefect already "
                                "knows this method (table-override: maintenance"),
              "clash with an overridden method");
  expect_that(Contains(message, "entry 5 (name = \"/gitaly.S/Bad\"): scope \"repository\" needs "
                                "target_repository_field"),
              "the format error reported together with the clashes");
}

}  // namespace
}  // namespace praefect::protoregistry

int main() {
  using namespace praefect::protoregistry;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(LooksUpKnownMethods),
      cmocka_unit_test(UnknownMethodsAreNotGuessed),
      cmocka_unit_test(PathFieldsAttached),
      cmocka_unit_test(IteratesAllMethodsSorted),
      cmocka_unit_test(AddsOperatorMethods),
      cmocka_unit_test(RejectsOperatorMethodsThatClash),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
