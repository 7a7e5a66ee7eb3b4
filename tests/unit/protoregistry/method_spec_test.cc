#include "protoregistry/method_spec.h"

#include <string>
#include <vector>

#include "test_support.h"

// Specs and table entries name only the fields they set; GCC 12 warns about
// that even for designated initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace praefect::protoregistry {
namespace {

// Stands for the packaged and table methods: one known name.
const MethodInfo kKnown = [] {
  MethodInfo info;
  info.full_name = "/gitaly.RepositoryService/CreateRepository";
  info.operation = Operation::kMutator;
  info.scope = Scope::kRepository;
  info.target_repository = {1};
  return info;
}();

const MethodInfo* Known(std::string_view name) { return name == kKnown.full_name ? &kKnown : nullptr; }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void AcceptsValidSpecs(void** /*state*/) {
  std::vector<MethodSpec> specs = {
      {.name = "/gitaly.RepositoryService/FooBar", .operation = "mutator", .scope = "repository",
       .target_repository_field = "1", .additional_repository_field = "2.1"},
      {.name = "/gitaly.NamespaceService/ListNamespaces", .operation = "accessor", .scope = "storage",
       .storage_field = "1", .shape = "server_stream"},
      {.name = "/gitaly.ServerService/Uptime", .operation = "accessor", .scope = "server"},
      {.name = "/gitaly.RepositoryService/Defrag", .operation = "maintenance", .scope = "repository",
       .target_repository_field = "1.1", .shape = "bidi_stream"},
  };
  std::vector<MethodInfo> out;
  assert_status_ok(ParseMethodSpecs(specs, Known, &out));
  assert_int_equal(out.size(), 4);

  expect_that(out[0].full_name == "/gitaly.RepositoryService/FooBar", "the name to be kept");
  expect_that(out[0].operation == Operation::kMutator && out[0].scope == Scope::kRepository, "mutator/repository");
  expect_that(out[0].target_repository == FieldPath{1}, "target 1");
  expect_that(out[0].additional_repository == (FieldPath{2, 1}), "additional 2.1");
  expect_that(out[0].shape == Shape::kUnary, "shape to default to unary");
  expect_that(out[0].source == Source::kOperator, "source operator");

  expect_that(out[1].scope == Scope::kStorage && out[1].storage == FieldPath{1}, "storage scope on field 1");
  expect_that(out[1].shape == Shape::kServerStream, "server_stream");
  expect_that(out[2].scope == Scope::kServer && out[2].target_repository.empty() && out[2].storage.empty(),
              "server scope without paths");
  expect_that(out[3].operation == Operation::kMaintenance && out[3].target_repository == (FieldPath{1, 1}),
              "maintenance on 1.1");
  expect_that(out[3].shape == Shape::kBidiStream, "bidi_stream");
}

struct BadCase {
  MethodSpec spec;
  const char* want;  // fragment the message must contain
};

const BadCase kBadCases[] = {
    {{.name = "gitaly.RepositoryService/Foo", .operation = "accessor", .scope = "server"},
     "is not a full gRPC method name; expected \"/package.Service/Method\""},
    {{.operation = "accessor", .scope = "server"}, "name is missing"},
    {{.name = "/gitaly.S/M", .operation = "writer", .scope = "server"},
     "operation = \"writer\" is not an operation; expected \"accessor\", \"mutator\" or \"maintenance\""},
    {{.name = "/gitaly.S/M", .scope = "server"}, "operation is missing"},
    {{.name = "/gitaly.S/M", .operation = "accessor", .scope = "repo", .target_repository_field = "1"},
     "scope = \"repo\" is not a scope; expected \"repository\", \"storage\" or \"server\""},
    {{.name = "/gitaly.S/M", .operation = "accessor"}, "scope is missing"},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "repository"},
     "scope \"repository\" needs target_repository_field"},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "repository", .target_repository_field = "1.x"},
     "target_repository_field: field path \"1.x\""},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "repository", .target_repository_field = "0"},
     "field numbers are 1 to 536870911"},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "repository", .target_repository_field = "1",
      .additional_repository_field = "2..1"},
     "additional_repository_field: field path \"2..1\" has an empty segment"},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "repository", .target_repository_field = "1",
      .additional_repository_field = "1"},
     "additional_repository_field must differ from target_repository_field"},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "repository", .target_repository_field = "1",
      .storage_field = "2"},
     "storage_field is only allowed with scope \"storage\""},
    {{.name = "/gitaly.S/M", .operation = "mutator", .scope = "storage"}, "scope \"storage\" needs storage_field"},
    {{.name = "/gitaly.S/M", .operation = "accessor", .scope = "storage", .target_repository_field = "2",
      .storage_field = "1"},
     "target_repository_field is only allowed with scope \"repository\", not \"storage\""},
    {{.name = "/gitaly.S/M", .operation = "accessor", .scope = "server", .target_repository_field = "1"},
     "target_repository_field is only allowed with scope \"repository\", not \"server\""},
    {{.name = "/gitaly.S/M", .operation = "accessor", .scope = "server", .additional_repository_field = "2"},
     "additional_repository_field is only allowed with scope \"repository\""},
    {{.name = "/gitaly.S/M", .operation = "accessor", .scope = "server", .storage_field = "1"},
     "storage_field is only allowed with scope \"storage\", not \"server\""},
    {{.name = "/gitaly.S/M", .operation = "maintenance", .scope = "server"},
     "operation \"maintenance\" needs scope \"repository\""},
    {{.name = "/gitaly.S/M", .operation = "accessor", .scope = "server", .shape = "stream"},
     "shape = \"stream\" is not a streaming shape; expected \"unary\" (the default)"},
    {{.name = "/gitaly.RepositoryService/CreateRepository", .operation = "mutator", .scope = "repository",
      .target_repository_field = "1"},
     "praefect already knows this method (packaged: mutator, repository scope); remove the entry"},
};

void RejectsEachKindOfBadSpec(void** /*state*/) {
  for (const BadCase& c : kBadCases) {
    std::vector<MethodInfo> out;
    Status status = ParseMethodSpecs(std::span<const MethodSpec>(&c.spec, 1), Known, &out);
    expect_that(status.code() == StatusCode::kInvalidArgument, std::string("INVALID_ARGUMENT for: ") + c.want);
    expect_that(Contains(status.message(), c.want), "message containing '" + std::string(c.want) +
                                                        "', got: " + status.message());
    expect_that(Contains(status.message(), "entry 1 (name = \"" + c.spec.name + "\")"),
                "the entry to be named: " + status.message());
    expect_that(Contains(status.message(), "[[registry.method]]"), "the config section to be named");
    expect_that(out.empty(), "nothing added on error");
  }
}

void ReportsAllProblemsAtOnce(void** /*state*/) {
  std::vector<MethodSpec> specs;
  specs.push_back({.name = "/gitaly.S/Good", .operation = "accessor", .scope = "server"});
  for (const BadCase& c : kBadCases) specs.push_back(c.spec);
  // Several problems in one entry are all listed.
  specs.push_back({.name = "bad", .operation = "x", .scope = "y", .shape = "z"});

  std::vector<MethodInfo> out;
  Status status = ParseMethodSpecs(specs, Known, &out);
  assert_int_equal(static_cast<int>(status.code()), static_cast<int>(StatusCode::kInvalidArgument));
  const std::string& message = status.message();
  const size_t bad = std::size(kBadCases) + 1;
  expect_that(Contains(message, "(" + std::to_string(bad) + " of " + std::to_string(specs.size()) + ")"),
              "the count of bad entries: " + message);
  for (size_t i = 0; i < std::size(kBadCases); ++i) {
    expect_that(Contains(message, "entry " + std::to_string(i + 2) + " ("), "entry " + std::to_string(i + 2));
    expect_that(Contains(message, kBadCases[i].want), std::string("the problem: ") + kBadCases[i].want);
  }
  expect_that(!Contains(message, "entry 1 ("), "the good entry not to be reported");
  const std::string last = "entry " + std::to_string(specs.size()) + " (name = \"bad\"): name = \"bad\"";
  expect_that(Contains(message, last), "every problem of the last entry: " + message);
  for (const char* fragment : {"operation = \"x\"", "scope = \"y\"", "shape = \"z\""}) {
    expect_that(Contains(message, fragment), std::string("the last entry's ") + fragment);
  }
  expect_that(out.empty(), "nothing added when any entry is bad");
}

void RejectsDuplicateSpecs(void** /*state*/) {
  std::vector<MethodSpec> specs = {
      {.name = "/gitaly.S/A", .operation = "accessor", .scope = "server"},
      {.name = "/gitaly.S/B", .operation = "accessor", .scope = "server"},
      {.name = "/gitaly.S/A", .operation = "mutator", .scope = "server"},
  };
  std::vector<MethodInfo> out;
  Status status = ParseMethodSpecs(specs, Known, &out);
  expect_that(status.code() == StatusCode::kInvalidArgument, "INVALID_ARGUMENT");
  expect_that(Contains(status.message(), "entry 3 (name = \"/gitaly.S/A\"): declared again; entry 1 already"),
              "the duplicate and the original to be named: " + status.message());
  expect_that(!Contains(status.message(), "entry 2"), "the distinct entry not to be reported");
}

void CheckMethodInfoAppliesTheSameRules(void** /*state*/) {
  MethodInfo info;
  info.full_name = "/gitaly.S/M";
  info.operation = Operation::kMaintenance;
  info.scope = Scope::kStorage;
  info.target_repository = {1};
  std::vector<std::string> problems = CheckMethodInfo(info);
  // needs storage_field, no target with storage scope, maintenance needs repository
  assert_int_equal(problems.size(), 3);
  info.scope = Scope::kRepository;
  info.operation = Operation::kAccessor;
  expect_that(CheckMethodInfo(info).empty(), "a repository accessor with a target to be fine");
}

}  // namespace
}  // namespace praefect::protoregistry

int main() {
  using namespace praefect::protoregistry;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(AcceptsValidSpecs),
      cmocka_unit_test(RejectsEachKindOfBadSpec),
      cmocka_unit_test(ReportsAllProblemsAtOnce),
      cmocka_unit_test(RejectsDuplicateSpecs),
      cmocka_unit_test(CheckMethodInfoAppliesTheSameRules),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
