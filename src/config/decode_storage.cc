// [[virtual_storage]] with its [[virtual_storage.node]] entries, the
// 2019-era top-level `virtual_storage_name` + `[[node]]` spelling, and the
// project's [[registry.method]] table.
#include "config/toml_reader.h"

namespace praefect::config::internal {
namespace {

// One node table at `path`; returns the key its storage name was written under.
std::string DecodeNode(const toml::table& table, const KeyPath& path, Diagnostics* diag, Node* node) {
  TableReader r(table, path, diag);
  std::string storage_key = "storage";
  r.String("storage", &node->storage);
  if (r.Has("name")) {
    std::string name;
    r.String("name", &name);
    if (!r.Has("storage")) {
      node->storage = name;
      storage_key = "name";
      diag->Warning(r.PathOf("name"), r.PosOf("name"),
                    "deprecated spelling: write storage = " + QuoteForMessage(name) + " instead of name");
    } else if (name != node->storage) {
      diag->Error(r.PathOf("name"), r.PosOf("name"),
                  "expected only `storage` (`name` is its old spelling), found both: storage = " +
                      QuoteForMessage(node->storage) + ", name = " + QuoteForMessage(name));
    } else {
      diag->Warning(r.PathOf("name"), r.PosOf("name"), "redundant: `name` repeats `storage`; remove it");
    }
  }
  r.String("address", &node->address);
  r.Secret("token", &node->token);
  r.Bool("primary", &node->primary);
  r.Finish();
  return storage_key;
}

void AddNodes(const std::vector<const toml::table*>& tables, const KeyPath& prefix, Diagnostics* diag,
              Decoded* out, VirtualStorage* vs) {
  std::vector<KeyPath> keys;
  std::vector<std::string> storage_keys;
  for (size_t j = 0; j < tables.size(); ++j) {
    KeyPath node_path = Join(prefix, IndexKey(j));
    Node node;
    storage_keys.push_back(DecodeNode(*tables[j], node_path, diag, &node));
    keys.push_back(node_path);
    vs->nodes.push_back(std::move(node));
  }
  out->node_keys.push_back(std::move(keys));
  out->storage_key_names.push_back(std::move(storage_keys));
}

}  // namespace

void DecodeVirtualStorages(TableReader& root, Decoded* out) {
  Diagnostics* diag = root.diag();
  bool modern = root.Has("virtual_storage");
  std::vector<const toml::table*> tables = root.TableArray("virtual_storage");
  for (size_t i = 0; i < tables.size(); ++i) {
    KeyPath path = {"virtual_storage", IndexKey(i)};
    TableReader r(*tables[i], path, diag);
    VirtualStorage vs;
    r.String("name", &vs.name);
    r.Int("default_replication_factor", &vs.default_replication_factor);
    std::vector<const toml::table*> nodes = r.TableArray("node");
    r.Finish();
    out->vs_keys.push_back(path);
    out->vs_name_keys.push_back(Join(path, "name"));
    AddNodes(nodes, Join(path, "node"), diag, out, &vs);
    out->config.virtual_storages.push_back(std::move(vs));
  }

  // Before [[virtual_storage]] existed (2019): one virtual storage named by
  // `virtual_storage_name`, its nodes in a top-level [[node]] list. Praefect
  // used them only when no [[virtual_storage]] was given; so does praefect.
  if (!root.Has("virtual_storage_name") && !root.Has("node")) return;
  std::string name;
  root.String("virtual_storage_name", &name);
  std::vector<const toml::table*> nodes = root.TableArray("node");
  KeyPath where = root.Has("virtual_storage_name") ? KeyPath{"virtual_storage_name"} : KeyPath{"node"};
  if (modern) {
    diag->Warning(where, root.PosOf(where.front()),
                  "ignored: the legacy `virtual_storage_name` and [[node]] keys are not used when "
                  "[[virtual_storage]] sections are present; remove them");
    return;
  }
  diag->Warning(where, root.PosOf(where.front()),
                "deprecated: write a [[virtual_storage]] section with name = " + QuoteForMessage(name) +
                    " and [[virtual_storage.node]] entries instead of `virtual_storage_name` and [[node]]");
  VirtualStorage vs;
  vs.name = name;
  out->vs_keys.push_back({});
  out->vs_name_keys.push_back({"virtual_storage_name"});
  AddNodes(nodes, {"node"}, diag, out, &vs);
  out->config.virtual_storages.push_back(std::move(vs));
}

void DecodeRegistry(TableReader& root, Decoded* out) {
  const toml::table* registry = root.Table("registry");
  if (registry == nullptr) return;
  TableReader r(*registry, {"registry"}, root.diag());
  std::vector<const toml::table*> methods = r.TableArray("method");
  r.Finish();
  for (size_t i = 0; i < methods.size(); ++i) {
    KeyPath path = {"registry", "method", IndexKey(i)};
    TableReader m(*methods[i], path, root.diag());
    MethodEntry entry;
    m.String("name", &entry.name);
    m.String("operation", &entry.operation);
    m.String("scope", &entry.scope);
    m.String("target_repository_field", &entry.target_repository_field);
    m.String("additional_repository_field", &entry.additional_repository_field);
    m.String("storage_field", &entry.storage_field);
    m.String("shape", &entry.shape);
    m.Finish();
    entry.file = root.diag()->file();
    entry.line = root.diag()->Where(path).line;
    out->config.registry_methods.push_back(std::move(entry));
  }
}

}  // namespace praefect::config::internal
