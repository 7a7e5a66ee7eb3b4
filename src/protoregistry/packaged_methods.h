#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"
#include "protoregistry/method_info.h"

namespace google::protobuf {
class MethodDescriptor;
}  // namespace google::protobuf

namespace praefect::protoregistry {

// Names of the packaged Gitaly .proto files ("blob.proto", ...), generated at
// configure time from the files proto/CMakeLists.txt compiles, so that the
// list cannot drift from what is linked. Static storage.
std::span<const std::string_view> PackagedProtoFiles();

// One method of the packaged protos, classified by the rules in registry.h.
struct PackagedMethod {
  MethodInfo info;  // meaningful only when `problem` is empty
  // Why the rules could not classify the method (ambiguous repositories,
  // missing op_type, ...). method_table.cc must then override it.
  std::string problem;
  // Lives as long as the process (generated pool).
  const google::protobuf::MethodDescriptor* descriptor = nullptr;
};

// Reads every service of every file in `files` from the generated descriptor
// pool. INTERNAL if a file is not in the pool: its generated code was not
// linked (praefect_gitaly_proto must be linked whole-archive).
StatusOr<std::vector<PackagedMethod>> LoadPackagedMethods(std::span<const std::string_view> files);

// Checks that `info` fits the method's descriptor: same streaming shape,
// target and additional paths lead to non-repeated gitaly.Repository fields,
// the storage path and the path fields to string fields. Returns the problems (empty = fits).
std::vector<std::string> CheckAgainstDescriptor(const MethodInfo& info,
                                                const google::protobuf::MethodDescriptor& method);

}  // namespace praefect::protoregistry
