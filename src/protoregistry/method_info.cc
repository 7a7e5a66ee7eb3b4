#include "protoregistry/method_info.h"

#include <charconv>

namespace praefect::protoregistry {

std::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kAccessor: return "accessor";
    case Operation::kMutator: return "mutator";
    case Operation::kMaintenance: return "maintenance";
  }
  return "unknown";
}

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRepository: return "repository";
    case Scope::kStorage: return "storage";
    case Scope::kServer: return "server";
  }
  return "unknown";
}

std::string_view ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kUnary: return "unary";
    case Shape::kClientStream: return "client_stream";
    case Shape::kServerStream: return "server_stream";
    case Shape::kBidiStream: return "bidi_stream";
  }
  return "unknown";
}

std::string_view SourceName(Source source) {
  switch (source) {
    case Source::kPackaged: return "packaged";
    case Source::kTableOverride: return "table-override";
    case Source::kTable: return "table";
    case Source::kOperator: return "operator";
  }
  return "unknown";
}

namespace {

// Operators copy operation and scope from the op_type option of Gitaly's
// protos, where they are upper case (MUTATOR, REPOSITORY): accept any case.
bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<Operation> ParseOperation(std::string_view text) {
  for (Operation op : {Operation::kAccessor, Operation::kMutator, Operation::kMaintenance}) {
    if (EqualsIgnoringCase(text, OperationName(op))) return op;
  }
  return std::nullopt;
}

std::optional<Scope> ParseScope(std::string_view text) {
  for (Scope scope : {Scope::kRepository, Scope::kStorage, Scope::kServer}) {
    if (EqualsIgnoringCase(text, ScopeName(scope))) return scope;
  }
  return std::nullopt;
}

std::optional<Shape> ParseShape(std::string_view text) {
  for (Shape shape : {Shape::kUnary, Shape::kClientStream, Shape::kServerStream, Shape::kBidiStream}) {
    if (text == ShapeName(shape)) return shape;
  }
  return std::nullopt;
}

StatusOr<FieldPath> ParseFieldPath(std::string_view text) {
  if (text.empty()) {
    return InvalidArgument("empty field path; expected field numbers separated by dots, like \"1\" or \"1.2\"");
  }
  const std::string quoted = "\"" + std::string(text) + "\"";
  FieldPath path;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    std::string_view segment = text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (segment.empty()) {
      return InvalidArgument("field path " + quoted + " has an empty segment; expected field numbers separated by "
                             "single dots, like \"1\" or \"1.2\"");
    }
    for (char c : segment) {
      if (c < '0' || c > '9') {
        return InvalidArgument("field path " + quoted + " contains \"" + std::string(segment) +
                               "\", which is not a field number; expected decimal field numbers separated by "
                               "dots, like \"1\" or \"1.2\"");
      }
    }
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), value);
    if (ec != std::errc() || end != segment.data() + segment.size() || value == 0 || value > kMaxFieldNumber) {
      return InvalidArgument("field path " + quoted + " contains field number " + std::string(segment) +
                             "; field numbers are 1 to " + std::to_string(kMaxFieldNumber));
    }
    path.push_back(static_cast<uint32_t>(value));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return path;
}

std::string FormatFieldPath(std::span<const uint32_t> path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out += '.';
    out += std::to_string(path[i]);
  }
  return out;
}

namespace {

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

}  // namespace

bool IsValidMethodName(std::string_view name) {
  if (name.size() < 2 || name[0] != '/') return false;
  name.remove_prefix(1);
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view service = name.substr(0, slash);
  std::string_view method = name.substr(slash + 1);
  if (!IsIdentifier(method)) return false;  // also rejects a third slash
  size_t parts = 0;
  size_t start = 0;
  while (true) {
    size_t dot = service.find('.', start);
    std::string_view part = service.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsIdentifier(part)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts >= 2;
}

}  // namespace praefect::protoregistry
