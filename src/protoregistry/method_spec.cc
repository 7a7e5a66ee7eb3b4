#include "protoregistry/method_spec.h"

#include <unordered_map>

namespace praefect::protoregistry {
namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Which paths an entry gives; see CombinationProblems.
struct PathsGiven {
  bool target = false;
  bool additional = false;
  bool storage = false;
  bool additional_is_target = false;
};

// "" if `name` is a valid full method name, else what is wrong.
std::string NameProblem(std::string_view name) {
  if (name.empty()) {
    return "name is missing; expected the full gRPC method name, like \"/gitaly.RepositoryService/FooBar\"";
  }
  if (!IsValidMethodName(name)) {
    return "name = " + Quote(name) +
           " is not a full gRPC method name; expected \"/package.Service/Method\", like "
           "\"/gitaly.RepositoryService/FooBar\"";
  }
  return "";
}

std::vector<std::string> CombinationProblems(Operation operation, Scope scope, const PathsGiven& given) {
  std::vector<std::string> problems;
  const std::string scope_name = Quote(ScopeName(scope));
  switch (scope) {
    case Scope::kRepository:
      if (!given.target) {
        problems.push_back("scope \"repository\" needs target_repository_field, the field-number path of the "
                           "gitaly.Repository in the request, like \"1\"");
      }
      if (given.storage) problems.push_back("storage_field is only allowed with scope \"storage\"");
      break;
    case Scope::kStorage:
      if (!given.storage) {
        problems.push_back("scope \"storage\" needs storage_field, the field-number path of the storage name "
                           "string in the request, like \"1\"");
      }
      [[fallthrough]];
    case Scope::kServer:
      if (given.target) {
        problems.push_back("target_repository_field is only allowed with scope \"repository\", not " +
                           scope_name);
      }
      if (given.additional) {
        problems.push_back("additional_repository_field is only allowed with scope \"repository\", not " +
                           scope_name);
      }
      if (scope == Scope::kServer && given.storage) {
        problems.push_back("storage_field is only allowed with scope \"storage\", not \"server\"");
      }
      break;
  }
  if (operation == Operation::kMaintenance && scope != Scope::kRepository) {
    problems.push_back("operation \"maintenance\" needs scope \"repository\" (maintenance runs on the "
                       "replicas of one repository), not " + scope_name);
  }
  if (given.additional_is_target) {
    problems.push_back("additional_repository_field must differ from target_repository_field");
  }
  return problems;
}

// Parses an optional path key; records a problem naming the key.
FieldPath ParseOptionalPath(std::string_view key, const std::string& text, std::vector<std::string>* problems) {
  if (text.empty()) return {};
  StatusOr<FieldPath> path = ParseFieldPath(text);
  if (!path.ok()) {
    problems->push_back(std::string(key) + ": " + path.status().message());
    return {};
  }
  return *path;
}

MethodInfo ParseSpec(const MethodSpec& spec, std::vector<std::string>* problems) {
  MethodInfo info;
  info.full_name = spec.name;
  info.source = Source::kOperator;
  info.note = "declared in [[registry.method]]";
  if (std::string problem = NameProblem(spec.name); !problem.empty()) problems->push_back(std::move(problem));

  if (spec.operation.empty()) {
    problems->push_back("operation is missing; expected \"accessor\", \"mutator\" or \"maintenance\"");
  } else if (auto op = ParseOperation(spec.operation)) {
    info.operation = *op;
  } else {
    problems->push_back("operation = " + Quote(spec.operation) +
                        " is not an operation; expected \"accessor\", \"mutator\" or \"maintenance\"");
  }

  bool scope_ok = false;
  if (spec.scope.empty()) {
    problems->push_back("scope is missing; expected \"repository\", \"storage\" or \"server\"");
  } else if (auto scope = ParseScope(spec.scope)) {
    info.scope = *scope;
    scope_ok = true;
  } else {
    problems->push_back("scope = " + Quote(spec.scope) +
                        " is not a scope; expected \"repository\", \"storage\" or \"server\"");
  }

  if (spec.shape.empty()) {
    info.shape = Shape::kUnary;
  } else if (auto shape = ParseShape(spec.shape)) {
    info.shape = *shape;
  } else {
    problems->push_back("shape = " + Quote(spec.shape) +
                        " is not a streaming shape; expected \"unary\" (the default), \"client_stream\", "
                        "\"server_stream\" or \"bidi_stream\"");
  }

  info.target_repository = ParseOptionalPath("target_repository_field", spec.target_repository_field, problems);
  info.additional_repository =
      ParseOptionalPath("additional_repository_field", spec.additional_repository_field, problems);
  info.storage = ParseOptionalPath("storage_field", spec.storage_field, problems);

  // Combination rules only make sense once the scope is known. A path that
  // failed to parse counts as given, so it is not also reported as missing.
  if (scope_ok) {
    PathsGiven given{.target = !spec.target_repository_field.empty(),
                     .additional = !spec.additional_repository_field.empty(),
                     .storage = !spec.storage_field.empty(),
                     .additional_is_target = !info.additional_repository.empty() &&
                                             info.additional_repository == info.target_repository};
    for (std::string& problem : CombinationProblems(info.operation, info.scope, given)) {
      problems->push_back(std::move(problem));
    }
  }
  return info;
}

}  // namespace

std::vector<std::string> CheckMethodInfo(const MethodInfo& info) {
  std::vector<std::string> problems;
  if (std::string problem = NameProblem(info.full_name); !problem.empty()) problems.push_back(std::move(problem));
  PathsGiven given{.target = !info.target_repository.empty(),
                   .additional = !info.additional_repository.empty(),
                   .storage = !info.storage.empty(),
                   .additional_is_target = !info.additional_repository.empty() &&
                                           info.additional_repository == info.target_repository};
  for (std::string& problem : CombinationProblems(info.operation, info.scope, given)) {
    problems.push_back(std::move(problem));
  }
  return problems;
}

Status ParseMethodSpecs(std::span<const MethodSpec> specs, const KnownMethodFn& known,
                        std::vector<MethodInfo>* out) {
  std::vector<MethodInfo> parsed;
  std::unordered_map<std::string_view, size_t> first_position;  // name -> 1-based entry
  std::string report;
  size_t bad = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const MethodSpec& spec = specs[i];
    std::vector<std::string> problems;
    MethodInfo info = ParseSpec(spec, &problems);
    // A bad name is already reported; checking it for clashes would be noise.
    if (IsValidMethodName(info.full_name)) {
      if (const MethodInfo* existing = known(info.full_name)) {
        problems.push_back("praefect already knows this method (" + std::string(SourceName(existing->source)) +
                           ": " + std::string(OperationName(existing->operation)) + ", " +
                           std::string(ScopeName(existing->scope)) + " scope); remove the entry");
      } else if (auto [it, inserted] = first_position.emplace(spec.name, i + 1); !inserted) {
        problems.push_back("declared again; entry " + std::to_string(it->second) +
                           " already declares it; keep one of them");
      }
    }
    if (problems.empty()) {
      parsed.push_back(std::move(info));
      continue;
    }
    ++bad;
    report += "\n  entry " + std::to_string(i + 1) + " (name = " + Quote(spec.name) + "): ";
    for (size_t p = 0; p < problems.size(); ++p) {
      if (p > 0) report += "; ";
      report += problems[p];
    }
  }
  if (bad > 0) {
    return InvalidArgument("invalid [[registry.method]] entries (" + std::to_string(bad) + " of " +
                           std::to_string(specs.size()) + "):" + report);
  }
  out->insert(out->end(), std::make_move_iterator(parsed.begin()), std::make_move_iterator(parsed.end()));
  return Status::Ok();
}

}  // namespace praefect::protoregistry
