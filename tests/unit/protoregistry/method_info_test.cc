#include "protoregistry/method_info.h"

#include <string>
#include <vector>

#include "test_support.h"

namespace praefect::protoregistry {
namespace {

void ParsesValidPaths(void** /*state*/) {
  struct Case {
    const char* text;
    FieldPath want;
  } cases[] = {
      {"1", {1}},
      {"1.2", {1, 2}},
      {"10.3.7", {10, 3, 7}},
      {"536870911", {kMaxFieldNumber}},
  };
  for (const Case& c : cases) {
    StatusOr<FieldPath> got = ParseFieldPath(c.text);
    assert_status_ok(got.status());
    expect_that(*got == c.want, std::string("ParseFieldPath(\"") + c.text + "\") to give the expected numbers");
    expect_that(FormatFieldPath(*got) == c.text, std::string("FormatFieldPath to give back ") + c.text);
  }
  expect_that(FormatFieldPath({}).empty(), "an empty path to format as \"\"");
}

void RejectsBadPaths(void** /*state*/) {
  const char* cases[] = {"", ".", "1.", ".1", "1..2", "0", "1.0", "a", "1.b", "-1", "+1", " 1", "1 ",
                         "536870912", "99999999999999999999999", "1,2"};
  for (const char* text : cases) {
    StatusOr<FieldPath> got = ParseFieldPath(text);
    expect_that(!got.ok(), std::string("ParseFieldPath(\"") + text + "\") to fail");
    expect_that(got.status().code() == StatusCode::kInvalidArgument, std::string("INVALID_ARGUMENT for ") + text);
    expect_that(got.status().message().find("like \"1\"") != std::string::npos ||
                    got.status().message().find("1 to 536870911") != std::string::npos,
                "the message to say what is expected: " + got.status().message());
    if (*text != '\0') {
      expect_that(got.status().message().find(std::string("\"") + text + "\"") != std::string::npos,
                  "the message to quote the input: " + got.status().message());
    }
  }
}

void ValidatesMethodNames(void** /*state*/) {
  const char* good[] = {"/gitaly.RepositoryService/CreateRepository", "/grpc.health.v1.Health/Check",
                        "/gitaly.RefTransaction/VoteTransaction", "/a_b.C2/D_3"};
  for (const char* name : good) expect_that(IsValidMethodName(name), std::string(name) + " to be valid");
  const char* bad[] = {"",
                       "/",
                       "gitaly.RepositoryService/CreateRepository",
                       "/RepositoryService/CreateRepository",
                       "/gitaly.RepositoryService/",
                       "/gitaly.RepositoryService",
                       "/gitaly.RepositoryService/Create/Repository",
                       "/gitaly..RepositoryService/CreateRepository",
                       "/gitaly.RepositoryService/1Create",
                       "/gitaly.Repository Service/Create",
                       "/.gitaly.RepositoryService/Create"};
  for (const char* name : bad) expect_that(!IsValidMethodName(name), std::string("\"") + name + "\" to be invalid");
}

void NamesRoundTrip(void** /*state*/) {
  for (Operation op : {Operation::kAccessor, Operation::kMutator, Operation::kMaintenance}) {
    expect_that(ParseOperation(OperationName(op)) == op, std::string(OperationName(op)) + " to round-trip");
  }
  for (Scope scope : {Scope::kRepository, Scope::kStorage, Scope::kServer}) {
    expect_that(ParseScope(ScopeName(scope)) == scope, std::string(ScopeName(scope)) + " to round-trip");
  }
  for (Shape shape : {Shape::kUnary, Shape::kClientStream, Shape::kServerStream, Shape::kBidiStream}) {
    expect_that(ParseShape(ShapeName(shape)) == shape, std::string(ShapeName(shape)) + " to round-trip");
  }
  expect_that(OperationName(Operation::kMaintenance) == "maintenance", "the configuration spelling");
  expect_that(ShapeName(Shape::kBidiStream) == "bidi_stream", "the configuration spelling");
  expect_that(ParseOperation("MUTATOR") == Operation::kMutator, "the op_type spelling MUTATOR to be accepted");
  expect_that(ParseScope("REPOSITORY") == Scope::kRepository, "the op_type spelling REPOSITORY to be accepted");
  expect_that(!ParseOperation("mutate").has_value(), "an unknown operation to be rejected");
  expect_that(!ParseScope("").has_value(), "an empty scope to be rejected");
  expect_that(!ParseShape("stream").has_value(), "an unknown shape to be rejected");
}

}  // namespace
}  // namespace praefect::protoregistry

int main() {
  using namespace praefect::protoregistry;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ParsesValidPaths),
      cmocka_unit_test(RejectsBadPaths),
      cmocka_unit_test(ValidatesMethodNames),
      cmocka_unit_test(NamesRoundTrip),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
