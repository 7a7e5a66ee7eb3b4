#include "protoregistry/registry.h"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "common/quote.h"
#include "protoregistry/packaged_methods.h"
#include "protoregistry/path_fields.h"

namespace praefect::protoregistry {
namespace {

// Turns a table entry into a MethodInfo; path syntax errors go to `problems`.
MethodInfo FromTableEntry(const TableEntry& entry, std::vector<std::string>* problems) {
  MethodInfo info;
  info.full_name = std::string(entry.name);
  info.operation = entry.operation;
  info.scope = entry.scope;
  info.shape = entry.shape;
  auto parse = [&](std::string_view key, std::string_view text, FieldPath* out) {
    if (text.empty()) return;
    StatusOr<FieldPath> path = ParseFieldPath(text);
    if (path.ok()) {
      *out = std::move(path).value();
    } else {
      problems->push_back(std::string(key) + ": " + path.status().message());
    }
  };
  parse("target_repository", entry.target_repository, &info.target_repository);
  parse("additional_repository", entry.additional_repository, &info.additional_repository);
  parse("storage", entry.storage, &info.storage);
  if (problems->empty()) {
    for (std::string& problem : CheckMethodInfo(info)) problems->push_back(std::move(problem));
  }
  if (entry.override_reason.empty()) {
    info.source = Source::kTable;
    info.note = "newer than the packaged protos";
  } else {
    info.source = Source::kTableOverride;
    info.note = "override: " + std::string(entry.override_reason);
  }
  return info;
}

}  // namespace

Registry::Registry(std::vector<MethodInfo> methods) : methods_(std::move(methods)) {
  index_.reserve(methods_.size());
  for (const MethodInfo& info : methods_) index_.emplace(info.full_name, &info);
}

StatusOr<std::unique_ptr<Registry>> Registry::Create(std::span<const MethodSpec> extra) {
  return CreateWithTable(KnownMethodTable(), extra);
}

StatusOr<std::unique_ptr<Registry>> Registry::CreateWithTable(std::span<const TableEntry> table,
                                                              std::span<const MethodSpec> extra) {
  StatusOr<std::vector<PackagedMethod>> packaged = LoadPackagedMethods(PackagedProtoFiles());
  if (!packaged.ok()) return packaged.status();
  std::unordered_map<std::string_view, const PackagedMethod*> packaged_by_name;
  for (const PackagedMethod& method : *packaged) packaged_by_name.emplace(method.info.full_name, &method);

  std::vector<MethodInfo> methods;
  std::vector<std::string> internal;  // table and descriptor inconsistencies
  std::unordered_set<std::string_view> table_names;
  for (const TableEntry& entry : table) {
    std::vector<std::string> problems;
    MethodInfo info = FromTableEntry(entry, &problems);
    auto found = packaged_by_name.find(entry.name);
    const PackagedMethod* original = found == packaged_by_name.end() ? nullptr : found->second;
    if (!table_names.insert(entry.name).second) {
      problems.push_back("listed twice in the table");
    } else if (original != nullptr && entry.override_reason.empty()) {
      problems.push_back("the packaged protos already define this method; give override_reason to replace "
                         "their classification deliberately, or remove the entry");
    } else if (original == nullptr && !entry.override_reason.empty()) {
      problems.push_back("has override_reason but the packaged protos do not define the method; drop the reason");
    } else if (original != nullptr && problems.empty()) {
      problems = CheckAgainstDescriptor(info, *original->descriptor);
    }
    if (!problems.empty()) {
      std::string line = "table entry " + std::string(entry.name) + ":";
      for (const std::string& problem : problems) line += " " + problem + ";";
      internal.push_back(std::move(line));
      continue;
    }
    methods.push_back(std::move(info));
  }
  for (const PackagedMethod& method : *packaged) {
    if (table_names.contains(method.info.full_name)) continue;
    if (!method.problem.empty()) {
      internal.push_back("packaged method " + method.info.full_name + ": " + method.problem +
                         "; method_table.cc must override it");
      continue;
    }
    methods.push_back(method.info);
  }
  for (const PathFieldEntry& entry : KnownPathFields()) {
    auto method = std::find_if(methods.begin(), methods.end(),
                               [&](const MethodInfo& info) { return info.full_name == entry.method; });
    StatusOr<FieldPath> path = ParseFieldPath(entry.field);
    if (method == methods.end() || !path.ok()) {
      internal.push_back("path field " + std::string(entry.field) + " of " + std::string(entry.method) + ": " +
                         (path.ok() ? "the registry has no such method" : path.status().message()));
      continue;
    }
    method->path_fields.push_back(MethodInfo::PathField{std::move(path).value(), std::string(entry.what)});
    auto original = packaged_by_name.find(entry.method);
    if (original == packaged_by_name.end()) continue;
    for (const std::string& problem : CheckAgainstDescriptor(*method, *original->second->descriptor))
      internal.push_back("path field " + std::string(entry.field) + " of " + std::string(entry.method) + ": " +
                         problem);
  }
  if (!internal.empty()) {
    std::string message = "protoregistry: the built-in method registry is inconsistent:";
    for (const std::string& line : internal) message += "\n  " + line;
    return Internal(std::move(message));
  }

  std::unordered_map<std::string_view, const MethodInfo*> known;
  for (const MethodInfo& info : methods) known.emplace(info.full_name, &info);
  std::vector<MethodInfo> declared;
  Status status = ParseMethodSpecs(
      extra,
      [&known](std::string_view name) -> const MethodInfo* {
        auto it = known.find(name);
        return it == known.end() ? nullptr : it->second;
      },
      &declared);
  if (!status.ok()) return status;
  known.clear();  // points into `methods`, which is about to grow
  methods.insert(methods.end(), std::make_move_iterator(declared.begin()), std::make_move_iterator(declared.end()));

  std::sort(methods.begin(), methods.end(),
            [](const MethodInfo& a, const MethodInfo& b) { return a.full_name < b.full_name; });
  return std::unique_ptr<Registry>(new Registry(std::move(methods)));
}

Status Registry::UnknownMethodError(std::string_view full_name) {
  return Unimplemented(
      "praefect does not know the gRPC method " + QuoteForMessage(full_name) +
      ", so it cannot tell which repository it addresses or whether it writes; it is never guessed. If it is "
      "a Gitaly method newer than this praefect, declare it in praefect's configuration and restart praefect: "
      "[[registry.method]] name = " + QuoteForMessage(full_name) +
      " operation = \"accessor\"|\"mutator\"|\"maintenance\" scope = \"repository\"|\"storage\"|\"server\" "
      "target_repository_field = \"1\" (see praefect.toml(5), section registry)");
}

}  // namespace praefect::protoregistry
