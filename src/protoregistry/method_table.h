#pragma once

#include <span>
#include <string_view>

#include "protoregistry/method_info.h"

namespace praefect::protoregistry {

// One entry of the project-owned method table (method_table.cc). Paths are
// dotted text so that the table reads like the .proto options it stands for;
// they are parsed (and, for overrides, checked against the descriptors) by
// Registry::Create, which fails on any mistake.
struct TableEntry {
  std::string_view name;  // "/gitaly.RepositoryService/ReplicateRepository"
  Operation operation = Operation::kAccessor;
  Scope scope = Scope::kRepository;
  Shape shape = Shape::kUnary;
  std::string_view target_repository;      // "" unless scope == kRepository
  std::string_view additional_repository;  // "" when none
  std::string_view storage;                // "" unless scope == kStorage
  // Empty: a method the packaged protos do not have; it is an error at
  // Create() if they do. Non-empty: the entry deliberately replaces the
  // packaged (or derived) classification of that method, and says why; it is
  // an error if the packaged protos lack the method.
  std::string_view override_reason;
};

// The table compiled into praefect. Static storage; never changes.
std::span<const TableEntry> KnownMethodTable();

}  // namespace praefect::protoregistry
