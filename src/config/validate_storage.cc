// Checks of [[virtual_storage]] and its nodes.
#include <map>

#include "config/address.h"
#include "config/internal.h"

namespace praefect::config::internal {
namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool Blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

std::string AtLine(const Diagnostics& diag, const KeyPath& key) {
  Pos pos = diag.Nearest(key);
  std::string where = KeyPathToString(key);
  if (pos.line != 0) where += " (line " + std::to_string(pos.line) + ")";
  return where;
}

// Runs every check of the virtual storages of one decoded config, reporting
// to `diag`. Single use; not thread-safe.
class StorageChecker {
 public:
  StorageChecker(const Decoded& d, Diagnostics* diag) : d_(d), c_(d.config), diag_(diag) {}

  void Run() {
    if (c_.virtual_storages.empty()) {
      diag_->Error({"virtual_storage"}, {},
                   "not set: expected at least one [[virtual_storage]] section with [[virtual_storage.node]] "
                   "entries, found none");
    }
    std::map<std::string, KeyPath> names;
    for (size_t i = 0; i < c_.virtual_storages.size(); ++i) {
      const VirtualStorage& vs = c_.virtual_storages[i];
      const KeyPath& name_key = d_.vs_name_keys[i];
      if (Blank(vs.name)) {
        Error(name_key,
              "blank or empty: expected the storage name GitLab uses for this cluster (such as \"default\"), "
              "found " +
                  Quote(vs.name));
      } else if (auto [it, fresh] = names.emplace(vs.name, name_key); !fresh) {
        Error(name_key, "not unique: virtual storage " + Quote(vs.name) + " is already defined at " +
                            AtLine(*diag_, it->second));
      }
      Nodes(i);
    }
  }

 private:
  void Error(const KeyPath& key, std::string message) {
    diag_->Error(key, diag_->Nearest(key), std::move(message));
  }
  void Warning(const KeyPath& key, std::string message) {
    diag_->Warning(key, diag_->Nearest(key), std::move(message));
  }

  void Nodes(size_t i) {
    const VirtualStorage& vs = c_.virtual_storages[i];
    const std::vector<KeyPath>& node_keys = d_.node_keys[i];
    KeyPath list_key = d_.vs_keys[i].empty() ? KeyPath{"node"} : Join(d_.vs_keys[i], "node");
    if (vs.nodes.empty()) {
      Error(list_key, "not set: expected at least one [[virtual_storage.node]] in virtual storage " +
                          Quote(vs.name) + ", found none");
    }
    int factor = vs.default_replication_factor;
    KeyPath factor_key = Join(d_.vs_keys[i], "default_replication_factor");
    if (factor < 0) {
      Warning(factor_key,
              "a negative replication factor means every node, as 0 does; write 0 (or leave it out)");
    } else if (factor > static_cast<int>(vs.nodes.size())) {
      Error(factor_key, "not in range: expected at most " + std::to_string(vs.nodes.size()) +
                            " (the number of nodes of virtual storage " + Quote(vs.name) + "), found " +
                            std::to_string(factor));
    }
    std::map<std::string, KeyPath> storages;
    std::map<std::string, KeyPath> addresses;
    const KeyPath* first_primary = nullptr;
    for (size_t j = 0; j < vs.nodes.size(); ++j) {
      const Node& node = vs.nodes[j];
      const KeyPath& prefix = node_keys[j];
      KeyPath storage_key = Join(prefix, d_.storage_key_names[i][j]);
      if (Blank(node.storage)) {
        Error(storage_key,
              "blank or empty: expected the Gitaly storage name of this node (such as \"gitaly-1\"), found " +
                  Quote(node.storage));
      } else if (auto [it, fresh] = storages.emplace(node.storage, storage_key); !fresh) {
        Error(storage_key, "not unique: storage " + Quote(node.storage) +
                               " is already used in virtual storage " + Quote(vs.name) + " by " +
                               AtLine(*diag_, it->second));
      }
      Address(Join(prefix, "address"), node.address, vs.name, &addresses);
      Token(Join(prefix, "token"), node.token);
      if (node.primary) {
        KeyPath primary_key = Join(prefix, "primary");
        if (first_primary != nullptr) {
          Error(primary_key, "expected at most one node with primary = true in virtual storage " +
                                 Quote(vs.name) + ", found a second one (the first is " +
                                 AtLine(*diag_, *first_primary) + ")");
        } else {
          first_primary = &node_keys[j];
          if (c_.failover.enabled && c_.failover.election_strategy == ElectionStrategy::kPerRepository) {
            Warning(primary_key,
                    "has no effect: with per-repository elections every repository elects its own "
                    "primary; remove it");
          }
        }
      }
    }
  }

  void Address(const KeyPath& key, const std::string& address, const std::string& vs_name,
               std::map<std::string, KeyPath>* seen) {
    if (address.empty()) {
      Error(key, "not set: expected the node's address, such as \"tcp://gitaly-1.internal:8075\"");
      return;
    }
    StatusOr<NodeAddress> parsed = ParseNodeAddress(address);
    if (!parsed.ok()) {
      Error(key, parsed.status().message());
      return;
    }
    if (auto [it, fresh] = seen->emplace(address, key); !fresh) {
      Error(key, "not unique: address " + Quote(address) + " is already used in virtual storage " +
                     Quote(vs_name) + " by " + AtLine(*diag_, it->second) +
                     "; each node is a separate Gitaly server");
    }
    bool network = parsed->scheme == NodeAddress::Scheme::kTcp || parsed->scheme == NodeAddress::Scheme::kTls;
    if (network && !parsed->has_port) {
      Warning(key, "no port in " + Quote(address) +
                       ": gRPC will use port 443; Gitaly usually listens on 8075 (tcp) "
                       "or 9999 (tls)");
    }
  }

  void Token(const KeyPath& key, const std::string& token) {
    if (!token.empty() && Blank(token)) {
      Error(key, "blank or empty: expected a token, found only whitespace");
    } else if (token.empty() && !c_.auth.token.empty()) {
      Warning(key,
              "not set: praefect calls this node without a token; if the node requires authentication every "
              "call to it fails with Unauthenticated");
    } else if (!token.empty() && token == c_.auth.token) {
      Warning(key,
              "the node token equals auth.token: clients of praefect could then call the node directly and "
              "bypass praefect; use a separate internal token");
    }
  }

  const Decoded& d_;
  const Config& c_;
  Diagnostics* diag_;
};

}  // namespace

void ValidateVirtualStorages(const Decoded& d, Diagnostics* diag) { StorageChecker(d, diag).Run(); }

}  // namespace praefect::config::internal
