#pragma once

#include <string_view>

#include "common/status.h"
#include "protoregistry/method_info.h"
#include "wire/rewriter.h"

// The path checks of a request's first message, in one place, so that every
// route (repository- and storage-scoped, registered or not) applies the same
// rules before it looks anything up, registers, logs or forwards
// (ARCHITECTURE.md §3). The rules themselves are wire/relative_path.h.
namespace praefect::coordinator {

// The target repository of a repository-scoped call, read with
// wire::ReadRepository: present, with a storage name, and a relative path
// that passes ValidateRelativePath. INVALID_ARGUMENT naming the method and
// the rule otherwise.
[[nodiscard]] Status ValidateTarget(std::string_view method, const wire::RepositoryRef& target);

// The additional repository of `info` (if the method has one and the
// request carries it) and every path field (MethodInfo::path_fields): each
// relative path that is there must pass ValidateRelativePath.
[[nodiscard]] Status ValidateOtherPaths(const protoregistry::MethodInfo& info, std::string_view message);

}  // namespace praefect::coordinator
