#include "protoregistry/packaged_methods.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>

#include "shared.pb.h"

namespace praefect::protoregistry {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

constexpr std::string_view kRepositoryType = "gitaly.Repository";
// Deepest nesting searched for repositories. The packaged protos nest them
// two deep at most (header.repository, pool.repository).
constexpr size_t kMaxDepth = 3;

bool IsRepository(const FieldDescriptor* field) {
  return field->type() == FieldDescriptor::TYPE_MESSAGE && !field->is_repeated() &&
         field->message_type()->full_name() == kRepositoryType;
}

// Appends the paths of every non-repeated gitaly.Repository field reachable
// from `message` through non-repeated message fields, in field order.
void FindRepositories(const Descriptor* message, FieldPath* prefix, std::vector<const Descriptor*>* stack,
                      std::vector<FieldPath>* out) {
  if (prefix->size() >= kMaxDepth) return;
  if (std::find(stack->begin(), stack->end(), message) != stack->end()) return;  // recursive type
  stack->push_back(message);
  for (int i = 0; i < message->field_count(); ++i) {
    const FieldDescriptor* field = message->field(i);
    if (field->type() != FieldDescriptor::TYPE_MESSAGE || field->is_repeated()) continue;
    prefix->push_back(static_cast<uint32_t>(field->number()));
    if (IsRepository(field)) {
      out->push_back(*prefix);
    } else if (field->message_type()->file()->package() == "gitaly") {
      FindRepositories(field->message_type(), prefix, stack, out);
    }
    prefix->pop_back();
  }
  stack->pop_back();
}

std::vector<FieldPath> RepositoryPaths(const Descriptor* request) {
  std::vector<FieldPath> out;
  FieldPath prefix;
  std::vector<const Descriptor*> stack;
  FindRepositories(request, &prefix, &stack, &out);
  return out;
}

// The field at `path`, or nullptr if the path leaves the message tree.
const FieldDescriptor* Resolve(const Descriptor* message, std::span<const uint32_t> path) {
  const FieldDescriptor* field = nullptr;
  for (size_t i = 0; i < path.size(); ++i) {
    if (message == nullptr) return nullptr;
    field = message->FindFieldByNumber(static_cast<int>(path[i]));
    if (field == nullptr) return nullptr;
    if (i + 1 < path.size()) {
      if (field->type() != FieldDescriptor::TYPE_MESSAGE || field->is_repeated()) return nullptr;
      message = field->message_type();
    }
  }
  return field;
}

Shape ShapeOf(const MethodDescriptor& method) {
  if (method.client_streaming()) return method.server_streaming() ? Shape::kBidiStream : Shape::kClientStream;
  return method.server_streaming() ? Shape::kServerStream : Shape::kUnary;
}

// Path of a top-level `string storage_name` field, or empty.
FieldPath StorageNameField(const Descriptor* request) {
  const FieldDescriptor* field = request->FindFieldByName("storage_name");
  if (field == nullptr || field->type() != FieldDescriptor::TYPE_STRING || field->is_repeated()) return {};
  return {static_cast<uint32_t>(field->number())};
}

std::string Quoted(std::span<const uint32_t> path) { return "\"" + FormatFieldPath(path) + "\""; }

std::string JoinPaths(const std::vector<FieldPath>& paths) {
  std::string out;
  for (const FieldPath& path : paths) {
    if (!out.empty()) out += ", ";
    out += Quoted(path);
  }
  return out;
}

// Applies the rules documented in registry.h to one method.
PackagedMethod Classify(const MethodDescriptor* method) {
  PackagedMethod result;
  result.descriptor = method;
  MethodInfo& info = result.info;
  info.full_name = "/" + method->service()->full_name() + "/" + method->name();
  info.shape = ShapeOf(*method);
  info.source = Source::kPackaged;

  const Descriptor* request = method->input_type();
  const std::vector<FieldPath> repositories = RepositoryPaths(request);
  if (!method->options().HasExtension(gitaly::op_type)) {
    result.problem = "no op_type option";
    return result;
  }
  const gitaly::OperationMsg& op = method->options().GetExtension(gitaly::op_type);
  const std::string& target_text = op.target_repository_field();

  if (op.op() == gitaly::OperationMsg::MUTATOR) {
    info.operation = Operation::kMutator;
  } else if (op.op() == gitaly::OperationMsg::ACCESSOR) {
    info.operation = Operation::kAccessor;
  } else {
    result.problem = "op_type has operation UNKNOWN";
    return result;
  }

  std::vector<std::string> notes;
  if (!target_text.empty()) {
    StatusOr<FieldPath> target = ParseFieldPath(target_text);
    if (!target.ok()) {
      result.problem = "target_repository_field: " + target.status().message();
      return result;
    }
    if (std::find(repositories.begin(), repositories.end(), *target) == repositories.end()) {
      result.problem = "target_repository_field \"" + target_text + "\" is not a gitaly.Repository field";
      return result;
    }
    info.scope = Scope::kRepository;
    info.target_repository = *target;
  } else if (info.operation == Operation::kMutator && op.scope_level() == gitaly::OperationMsg::REPOSITORY) {
    result.problem = "REPOSITORY-scoped MUTATOR without target_repository_field";
    return result;
  } else if (info.operation == Operation::kMutator) {
    // Rule M1: SERVER-scoped mutators.
    if (FieldPath storage = StorageNameField(request); !storage.empty()) {
      info.scope = Scope::kStorage;
      info.storage = storage;
      notes.push_back("storage scope: SERVER mutator with a storage_name field (M1)");
    } else if (!repositories.empty()) {
      result.problem = "SERVER-scoped MUTATOR whose request has gitaly.Repository fields " + JoinPaths(repositories);
      return result;
    } else {
      info.scope = Scope::kServer;
    }
  } else {
    // Rules A1-A3: accessors carry no target_repository_field in this version.
    std::vector<FieldPath> top_level;
    for (const FieldPath& path : repositories) {
      if (path.size() == 1) top_level.push_back(path);
    }
    if (top_level.size() == 1) {
      info.scope = Scope::kRepository;
      info.target_repository = top_level[0];
      notes.push_back("target: the only top-level gitaly.Repository field (A1)");
    } else if (!repositories.empty()) {
      result.problem = "ACCESSOR with gitaly.Repository fields " + JoinPaths(repositories) +
                       " and no target_repository_field: which one is the target is ambiguous";
      return result;
    } else if (FieldPath storage = StorageNameField(request); !storage.empty()) {
      info.scope = Scope::kStorage;
      info.storage = storage;
      notes.push_back("storage scope: ACCESSOR with a storage_name field and no repository (A2)");
    } else {
      info.scope = Scope::kServer;
      notes.push_back("server scope: ACCESSOR with neither repository nor storage_name (A3)");
    }
  }

  // Rule R1: the additional repository is the one other repository.
  if (info.scope == Scope::kRepository) {
    std::vector<FieldPath> others;
    for (const FieldPath& path : repositories) {
      if (path != info.target_repository) others.push_back(path);
    }
    if (others.size() > 1) {
      result.problem = "gitaly.Repository fields " + JoinPaths(others) +
                       " besides the target: which one is the additional repository is ambiguous";
      return result;
    }
    if (others.size() == 1) {
      info.additional_repository = others[0];
      notes.push_back("additional: the other gitaly.Repository field (R1)");
    }
  }
  for (const std::string& note : notes) {
    if (!info.note.empty()) info.note += "; ";
    info.note += note;
  }
  return result;
}

}  // namespace

StatusOr<std::vector<PackagedMethod>> LoadPackagedMethods(std::span<const std::string_view> files) {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  std::vector<PackagedMethod> methods;
  std::string missing;
  for (std::string_view name : files) {
    const google::protobuf::FileDescriptor* file = pool->FindFileByName(std::string(name));
    if (file == nullptr) {
      if (!missing.empty()) missing += ", ";
      missing += name;
      continue;
    }
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) methods.push_back(Classify(service->method(m)));
    }
  }
  if (!missing.empty()) {
    return Internal("protoregistry: the descriptors of " + missing +
                    " are not registered in this binary: their generated code was not linked in; link the "
                    "executable against praefect_protoregistry, which links praefect_gitaly_proto "
                    "whole-archive");
  }
  return methods;
}

std::vector<std::string> CheckAgainstDescriptor(const MethodInfo& info, const MethodDescriptor& method) {
  std::vector<std::string> problems;
  if (info.shape != ShapeOf(method)) {
    problems.push_back("shape " + std::string(ShapeName(info.shape)) + " but the method is " +
                       std::string(ShapeName(ShapeOf(method))));
  }
  const Descriptor* request = method.input_type();
  auto check_repository = [&](std::string_view what, const FieldPath& path) {
    if (path.empty()) return;
    const FieldDescriptor* field = Resolve(request, path);
    if (field == nullptr || !IsRepository(field)) {
      problems.push_back(std::string(what) + " " + Quoted(path) + " is not a gitaly.Repository field of " +
                         request->full_name());
    }
  };
  check_repository("target repository", info.target_repository);
  check_repository("additional repository", info.additional_repository);
  if (!info.storage.empty()) {
    const FieldDescriptor* field = Resolve(request, info.storage);
    if (field == nullptr || field->type() != FieldDescriptor::TYPE_STRING || field->is_repeated()) {
      problems.push_back("storage " + Quoted(info.storage) + " is not a string field of " + request->full_name());
    }
  }
  for (const MethodInfo::PathField& path_field : info.path_fields) {
    const FieldDescriptor* field = Resolve(request, path_field.path);
    if (field == nullptr || field->type() != FieldDescriptor::TYPE_STRING || field->is_repeated()) {
      problems.push_back("path field " + Quoted(path_field.path) + " is not a string field of " +
                         request->full_name());
    }
  }
  return problems;
}

}  // namespace praefect::protoregistry
