#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

namespace praefect::protoregistry {

// What a method does to the repository it addresses; decides where the
// coordinator sends it.
enum class Operation {
  kAccessor,     // reads: any up-to-date replica
  kMutator,      // writes: the primary (+ voters), then replication
  kMaintenance,  // housekeeping: every healthy replica, no generation bump
};

// What the method addresses.
enum class Scope {
  kRepository,  // one repository, found at MethodInfo::target_repository
  kStorage,     // a whole storage, named by the string at MethodInfo::storage
  kServer,      // the server as a whole (ServerInfo, CloseSession)
};

// gRPC streaming shape of the method.
enum class Shape {
  kUnary,
  kClientStream,
  kServerStream,
  kBidiStream,
};

// Where a MethodInfo came from.
enum class Source {
  kPackaged,       // descriptors of the packaged Gitaly protos (+ documented derivation rules)
  kTableOverride,  // packaged method, classification replaced by method_table.cc (with a reason)
  kTable,          // Gitaly method newer than the packaged protos, from method_table.cc
  kOperator,       // [[registry.method]] in the configuration
};

// A dotted field-number path ("1.2" = field 2 of the message in field 1) as
// numbers. Each number is a protobuf field number (1 .. 2^29-1).
using FieldPath = std::vector<uint32_t>;

// Everything praefect knows about one gRPC method. Immutable once built.
struct MethodInfo {
  std::string full_name;  // "/gitaly.RepositoryService/CreateRepository"
  Operation operation = Operation::kAccessor;
  Scope scope = Scope::kServer;
  Shape shape = Shape::kUnary;
  // Path of the gitaly.Repository the method acts on, in the first request
  // message. Non-empty exactly when scope == kRepository.
  FieldPath target_repository;
  // Path of a second gitaly.Repository in the request (fork source, object
  // pool, ...). Empty when there is none. See registry.h on what it means.
  FieldPath additional_repository;
  // Path of the storage-name string. Non-empty exactly when scope == kStorage.
  FieldPath storage;
  // String fields of the first request message that hold a path relative to
  // the storage (RenameRepository's destination, namespace names), with how
  // error messages name them; see protoregistry/path_fields.h.
  struct PathField {
    FieldPath path;
    std::string what;
  };
  std::vector<PathField> path_fields;
  Source source = Source::kPackaged;
  // Why the entry looks the way it does when that is not simply the op_type
  // option: the derivation rule applied, or the table's reason. For listings.
  std::string note;
};

// Lower-case names as used in the configuration: "accessor", "repository",
// "server_stream", "packaged".
std::string_view OperationName(Operation op);
std::string_view ScopeName(Scope scope);
std::string_view ShapeName(Shape shape);
std::string_view SourceName(Source source);

// Inverse of the above; nullopt for anything else (case-sensitive).
std::optional<Operation> ParseOperation(std::string_view text);
std::optional<Scope> ParseScope(std::string_view text);
std::optional<Shape> ParseShape(std::string_view text);

// Largest protobuf field number.
inline constexpr uint32_t kMaxFieldNumber = (1u << 29) - 1;

// Parses "1" or "1.2.3": dot-separated decimal field numbers, each 1 ..
// kMaxFieldNumber, no empty segment, no sign, no blanks. INVALID_ARGUMENT
// saying what was wrong otherwise.
StatusOr<FieldPath> ParseFieldPath(std::string_view text);

// "1.2.3"; "" for an empty path.
std::string FormatFieldPath(std::span<const uint32_t> path);

// True if `name` has the shape "/pkg.Service/Method": a leading slash, a
// dotted service name of at least two identifiers, a slash, an identifier.
[[nodiscard]] bool IsValidMethodName(std::string_view name);

}  // namespace praefect::protoregistry
