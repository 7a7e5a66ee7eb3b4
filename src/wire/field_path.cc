#include "wire/field_path.h"

#include <google/protobuf/stubs/common.h>

#include <climits>

namespace praefect::wire {

std::string PathToString(FieldPath path) {
  if (path.empty()) return "(top level)";
  std::string text;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0) text.push_back('.');
    text.append(std::to_string(path[i]));
  }
  return text;
}

Status CheckFieldPath(FieldPath path) {
  if (path.empty()) return Internal("wire: empty field path; a request field path needs at least one field number");
  if (path.size() > kMaxPathLength) {
    return Internal("wire: field path " + PathToString(path) + " has " + std::to_string(path.size()) +
                    " elements, at most " + std::to_string(kMaxPathLength) + " are supported");
  }
  for (uint32_t number : path) {
    if (number == 0 || number > kMaxFieldNumber) {
      return Internal("wire: field path " + PathToString(path) + " contains " + std::to_string(number) +
                      ", which is not a protobuf field number (1 to " + std::to_string(kMaxFieldNumber) + ")");
    }
  }
  return Status::Ok();
}

Status CheckMessageSize(std::string_view message) {
  // Same bound as libprotobuf's parser: sizes must fit an int with room for
  // its 16 slop bytes.
  if (message.size() > static_cast<size_t>(INT_MAX - 16)) {
    return InvalidArgument("request message of " + std::to_string(message.size()) +
                           " bytes is larger than protobuf's 2 GiB limit");
  }
  return Status::Ok();
}

Status CheckReplacement(std::string_view what, std::string_view value) {
  if (value.size() > static_cast<size_t>(INT_MAX / 4)) {
    return Internal("wire: replacement " + std::string(what) + " of " + std::to_string(value.size()) +
                    " bytes is too large");
  }
  if (!IsValidUtf8(value)) {
    return Internal("wire: replacement " + std::string(what) + " is not valid UTF-8");
  }
  return Status::Ok();
}

bool IsValidUtf8(std::string_view bytes) {
  return google::protobuf::internal::IsStructurallyValidUTF8(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace praefect::wire
