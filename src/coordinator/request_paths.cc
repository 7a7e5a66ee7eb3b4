#include "coordinator/request_paths.h"

#include <string>

#include "wire/relative_path.h"

namespace praefect::coordinator {
namespace {

Status InMethod(std::string_view method, const Status& st) {
  return Status(st.code(), std::string(method) + ": " + st.message());
}

}  // namespace

Status ValidateTarget(std::string_view method, const wire::RepositoryRef& target) {
  if (!target.present || (target.storage_name.empty() && target.relative_path.empty()))
    return InvalidArgument(std::string(method) + ": repository not set: the request names no repository");
  if (target.storage_name.empty())
    return InvalidArgument(std::string(method) + ": storage name not set: the repository names no storage");
  if (target.relative_path.empty())
    return InvalidArgument(std::string(method) + ": repository path not set: the repository names no relative path");
  if (Status st = wire::ValidateRelativePath("relative path", target.relative_path); !st.ok())
    return InMethod(method, st);
  return Status::Ok();
}

Status ValidateOtherPaths(const protoregistry::MethodInfo& info, std::string_view message) {
  if (!info.additional_repository.empty()) {
    auto additional = wire::ReadRepository(message, info.additional_repository);
    if (!additional.ok()) return additional.status();
    // An additional repository that is absent, or present but empty, is the
    // node's to refuse (some methods make it optional); one that names
    // anything is checked like the target.
    if (additional->present && (!additional->storage_name.empty() || !additional->relative_path.empty())) {
      if (Status st = wire::ValidateRelativePath("additional repository's relative path", additional->relative_path);
          !st.ok())
        return InMethod(info.full_name, st);
    }
  }
  for (const protoregistry::MethodInfo::PathField& field : info.path_fields) {
    auto value = wire::ReadStringField(message, field.path);
    if (!value.ok()) return value.status();
    if (Status st = wire::ValidateRelativePath(field.what, value->value_or("")); !st.ok())
      return InMethod(info.full_name, st);
  }
  return Status::Ok();
}

}  // namespace praefect::coordinator
