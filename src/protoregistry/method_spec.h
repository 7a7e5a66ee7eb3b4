#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "protoregistry/method_info.h"

namespace praefect::protoregistry {

// A method declared by the operator in the configuration, as plain text:
//
//   [[registry.method]]
//   name = "/gitaly.RepositoryService/FooBar"
//   operation = "mutator"
//   scope = "repository"
//   target_repository_field = "1"
//
// Empty strings mean "not given". See praefect.toml(5) for the meaning of each key.
struct MethodSpec {
  std::string name;                         // "/pkg.Service/Method"
  std::string operation;                    // accessor | mutator | maintenance
  std::string scope;                        // repository | storage | server
  std::string target_repository_field;      // required for scope repository ("1", "1.2")
  std::string additional_repository_field;  // optional, scope repository only
  std::string storage_field;                // required for scope storage
  std::string shape;                        // unary (default) | client_stream | server_stream | bidi_stream
};

// Consistency rules shared by operator specs and method_table.cc: valid
// name; repository scope has a target and no storage path; storage scope has
// a storage path and no repository paths; server scope has no paths;
// maintenance is repository-scoped; additional differs from target. Returns
// each problem as a sentence fragment saying what is expected.
std::vector<std::string> CheckMethodInfo(const MethodInfo& info);

// Returns the registry entry already named `name`, or nullptr.
using KnownMethodFn = std::function<const MethodInfo*(std::string_view name)>;

// Validates every spec: syntax and values, CheckMethodInfo, no clash with a
// method `known` returns (packaged or table), no two specs with one name.
// On success appends one MethodInfo (Source::kOperator) per spec to `out`.
// Otherwise returns a single INVALID_ARGUMENT listing every bad entry by its
// 1-based position and name, with what is wrong and what is expected, and
// leaves `out` unchanged.
[[nodiscard]] Status ParseMethodSpecs(std::span<const MethodSpec> specs, const KnownMethodFn& known,
                                      std::vector<MethodInfo>* out);

}  // namespace praefect::protoregistry
