#include "cli/node_ping.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "auth/token.h"
#include "nodes/node_set.h"
#include "server.grpc.pb.h"

namespace praefect::cli {
namespace {

// The storages one address serves, and where they are configured.
struct Address {
  std::string address;
  std::string token;
  std::vector<std::string> storages;
  std::set<std::string> virtual_storages;
};

std::string Join(const std::set<std::string>& names) {
  std::string out = "[";
  for (const auto& n : names) out += (out.size() > 1 ? " " : "") + n;
  return out + "]";
}

// Runs the steps against one address; false when a step failed.
bool DialOne(const Address& a, std::chrono::milliseconds timeout, std::ostream& out) {
  auto say = [&](const std::string& line) { out << "[" << a.address << "]: " << line << "\n" << std::flush; };
  say("dialing...");
  auto channel = nodes::Dial(a.address, grpc::ChannelArguments());
  if (!channel.ok()) {
    say("ERROR: dialing failed: " + channel.status().message());
    return false;
  }
  if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    say("ERROR: dialing failed: no connection within " + std::to_string(timeout.count()) +
        " ms: is the node running and is the address right?");
    return false;
  }
  say("dialed successfully!");

  say("checking health...");
  if (Status st = nodes::CheckHealth(*channel, timeout); !st.ok()) {
    say("ERROR: node is not healthy: " + st.message());
    return false;
  }
  say("SUCCESS: node is healthy!");

  say("checking consistency...");
  auto stub = gitaly::ServerService::NewStub(*channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!a.token.empty())
    ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                    auth::BearerV2(a.token, std::chrono::system_clock::now()));
  gitaly::ServerInfoResponse info;
  grpc::Status st = stub->ServerInfo(&ctx, gitaly::ServerInfoRequest(), &info);
  if (!st.ok()) {
    say("ERROR: ServerInfo failed: " + st.error_message() +
        (st.error_code() == grpc::StatusCode::UNAUTHENTICATED || st.error_code() == grpc::StatusCode::PERMISSION_DENIED
             ? " (check the node's token in the configuration)"
             : ""));
    return false;
  }
  bool ok = true;
  const std::string where = " in virtual storages " + Join(a.virtual_storages);
  for (const auto& storage : a.storages) {
    const gitaly::ServerInfoResponse::StorageStatus* status = nullptr;
    for (const auto& s : info.storage_statuses()) {
      if (s.storage_name() == storage) status = &s;
    }
    if (status == nullptr) {
      say("ERROR: Gitaly storage \"" + storage + "\"" + where +
          " is not served by this node: check the node's storage names");
      ok = false;
      continue;
    }
    say("SUCCESS: confirmed Gitaly storage \"" + storage + "\"" + where + " is served");
    if (status->readable()) {
      say("SUCCESS: confirmed Gitaly storage \"" + storage + "\"" + where + " is readable");
    } else {
      say("ERROR: Gitaly storage \"" + storage + "\"" + where + " is not readable");
      ok = false;
    }
    if (status->writeable()) {
      say("SUCCESS: confirmed Gitaly storage \"" + storage + "\"" + where + " is writeable");
    } else {
      say("ERROR: Gitaly storage \"" + storage + "\"" + where + " is not writeable");
      ok = false;
    }
  }
  if (ok) say("SUCCESS: node configuration is consistent!");
  return ok;
}

}  // namespace

std::vector<std::string> PingAll(const config::Config& config, std::chrono::milliseconds timeout, std::ostream* out) {
  // Nodes are checked per address, in configuration order.
  std::vector<Address> addresses;
  std::map<std::string, size_t> index;
  for (const auto& vs : config.virtual_storages) {
    for (const auto& node : vs.nodes) {
      auto [it, inserted] = index.emplace(node.address, addresses.size());
      if (inserted) addresses.push_back(Address{node.address, node.token, {}, {}});
      Address& a = addresses[it->second];
      if (std::find(a.storages.begin(), a.storages.end(), node.storage) == a.storages.end())
        a.storages.push_back(node.storage);
      a.virtual_storages.insert(vs.name);
    }
  }
  std::vector<std::string> failed;
  for (const Address& a : addresses) {
    std::ostringstream quiet;
    if (!DialOne(a, timeout, out != nullptr ? *out : quiet)) failed.push_back(a.address);
  }
  return failed;
}

}  // namespace praefect::cli
