#include "node_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace praefect::storagenode {
namespace {

std::string Where(const std::string& origin, const toml::node& node) {
  const auto& src = node.source();
  return origin + ":" + std::to_string(src.begin.line);
}

std::string TypeName(const toml::node& node) {
  std::ostringstream os;
  os << node.type();
  return os.str();
}

// Reads an optional string key of `table`.
Status ReadString(const toml::table& table, const std::string& key, const std::string& prefix,
                  const std::string& origin, std::string* out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  if (auto v = node->value<std::string>(); v && node->is_string()) {
    *out = *v;
    return Status::Ok();
  }
  return InvalidArgument(Where(origin, *node) + ": " + prefix + key + ": expected a string, found " +
                         TypeName(*node));
}

Status CheckKeys(const toml::table& table, const std::set<std::string>& known, const std::string& prefix,
                 const std::string& origin) {
  for (const auto& [key, node] : table) {
    if (known.count(std::string(key.str())) == 0) {
      return InvalidArgument(Where(origin, node) + ": " + prefix + std::string(key.str()) +
                             ": unknown key for the storage node");
    }
  }
  return Status::Ok();
}

StatusOr<NodeConfig> Decode(const toml::table& root, const std::string& origin) {
  NodeConfig cfg;
  // Keys Gitaly has that the node accepts and ignores are listed too, so a
  // Gitaly config.toml loads.
  if (Status st = CheckKeys(root, {"listen_addr", "socket_path", "auth", "storage", "git", "bin_dir",
                                   "runtime_dir", "logging", "prometheus_listen_addr"},
                            "", origin);
      !st.ok())
    return st;
  if (Status st = ReadString(root, "listen_addr", "", origin, &cfg.listen_addr); !st.ok()) return st;
  if (Status st = ReadString(root, "socket_path", "", origin, &cfg.socket_path); !st.ok()) return st;
  if (const toml::node* auth = root.get("auth")) {
    const toml::table* t = auth->as_table();
    if (t == nullptr)
      return InvalidArgument(Where(origin, *auth) + ": auth: expected a table, found " + TypeName(*auth));
    if (Status st = CheckKeys(*t, {"token", "transitioning"}, "auth.", origin); !st.ok()) return st;
    if (Status st = ReadString(*t, "token", "auth.", origin, &cfg.auth_token); !st.ok()) return st;
    if (const toml::node* tr = t->get("transitioning")) {
      if (!tr->is_boolean())
        return InvalidArgument(Where(origin, *tr) + ": auth.transitioning: expected a boolean, found " +
                               TypeName(*tr));
      cfg.auth_transitioning = tr->value_or(false);
    }
  }
  if (const toml::node* git = root.get("git"); git && git->is_table()) {
    if (Status st = ReadString(*git->as_table(), "bin_path", "git.", origin, &cfg.git_binary); !st.ok())
      return st;
  }
  const toml::node* storages = root.get("storage");
  if (storages == nullptr || !storages->is_array_of_tables()) {
    return InvalidArgument(origin + ": storage: expected one or more [[storage]] tables with name and path" +
                           (storages ? ", found " + TypeName(*storages) : ", found none"));
  }
  std::set<std::string> names;
  size_t i = 0;
  for (const toml::node& item : *storages->as_array()) {
    const toml::table& t = *item.as_table();
    std::string prefix = "storage[" + std::to_string(i++) + "].";
    StorageConfig s;
    if (Status st = CheckKeys(t, {"name", "path"}, prefix, origin); !st.ok()) return st;
    if (Status st = ReadString(t, "name", prefix, origin, &s.name); !st.ok()) return st;
    if (Status st = ReadString(t, "path", prefix, origin, &s.path); !st.ok()) return st;
    if (s.name.empty()) return InvalidArgument(Where(origin, t) + ": " + prefix + "name: expected a non-empty name");
    if (s.path.empty() || s.path[0] != '/')
      return InvalidArgument(Where(origin, t) + ": " + prefix + "path: expected an absolute directory, found \"" +
                             s.path + "\"");
    if (!names.insert(s.name).second)
      return InvalidArgument(Where(origin, t) + ": " + prefix + "name: storage \"" + s.name +
                             "\" is declared twice");
    cfg.storages.push_back(std::move(s));
  }
  if (cfg.listen_addr.empty() && cfg.socket_path.empty())
    return InvalidArgument(origin + ": listen_addr, socket_path: expected at least one of them, found neither");
  if (!cfg.listen_addr.empty() && cfg.listen_addr.rfind(':') == std::string::npos)
    return InvalidArgument(origin + ": listen_addr: expected host:port, found \"" + cfg.listen_addr + "\"");
  return cfg;
}

}  // namespace

StatusOr<NodeConfig> ParseNodeConfig(const std::string& text, const std::string& origin) {
  try {
    toml::table root = toml::parse(text, origin);
    return Decode(root, origin);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(origin + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
  }
}

StatusOr<NodeConfig> LoadNodeConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path + ": cannot read the configuration file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseNodeConfig(ss.str(), path);
}

}  // namespace praefect::storagenode
