#include "nodes/node_set.h"

#include <algorithm>

#include <grpcpp/generic/generic_stub.h>

#include "config/address.h"
#include "log/log.h"

namespace praefect::nodes {

std::string Node::Label() const {
  return "virtual storage \"" + virtual_storage + "\", node \"" + storage + "\"";
}

const Node* VirtualStorage::FindNode(std::string_view storage) const {
  for (const auto& node : nodes) {
    if (node->storage == storage) return node.get();
  }
  return nullptr;
}

StatusOr<DialTarget> ResolveAddress(std::string_view address) {
  auto parsed = config::ParseNodeAddress(address);
  if (!parsed.ok()) return parsed.status();
  using Scheme = config::NodeAddress::Scheme;
  DialTarget out;
  switch (parsed->scheme) {
    case Scheme::kUnix:
      out.target = "unix:" + parsed->target;
      break;
    case Scheme::kDns:
      out.target = parsed->authority.empty() ? "dns:///" + parsed->target
                                             : "dns://" + parsed->authority + "/" + parsed->target;
      break;
    case Scheme::kTls:
      out.tls = true;
      [[fallthrough]];
    case Scheme::kTcp:
      // Go's gRPC dials port 443 when none is given; grpc++ would too, but
      // say it explicitly.
      out.target = parsed->has_port ? parsed->target : parsed->target + ":443";
      break;
  }
  return out;
}

StatusOr<std::shared_ptr<grpc::Channel>> Dial(std::string_view address, const grpc::ChannelArguments& args,
                                              const MakeInterceptors& interceptors) {
  auto target = ResolveAddress(address);
  if (!target.ok()) return target.status();
  std::shared_ptr<grpc::ChannelCredentials> creds =
      target->tls ? grpc::SslCredentials(grpc::SslCredentialsOptions()) : grpc::InsecureChannelCredentials();
  if (interceptors)
    return grpc::experimental::CreateCustomChannelWithInterceptors(target->target, creds, args, interceptors());
  return grpc::CreateCustomChannel(target->target, creds, args);
}

StatusOr<std::shared_ptr<const http2::Upstream>> UpstreamFor(std::string_view address, std::string label,
                                                             const MakeClientTls& make_tls) {
  auto parsed = config::ParseNodeAddress(address);
  if (!parsed.ok()) return parsed.status();
  using Scheme = config::NodeAddress::Scheme;
  auto up = std::make_shared<http2::Upstream>();
  up->label = std::move(label);
  if (parsed->scheme == Scheme::kUnix) {
    up->target.kind = http2::ConnectTarget::Kind::kUnix;
    up->target.path = parsed->target;
    up->authority = "localhost";
    return std::shared_ptr<const http2::Upstream>(std::move(up));
  }
  // host:port, [v6]:port, or host (443, as Go's gRPC dials).
  std::string hostport = parsed->target;
  if ((parsed->scheme == Scheme::kTcp || parsed->scheme == Scheme::kTls) && !parsed->has_port) hostport += ":443";
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("address "" + std::string(address) + "" has no port");
  std::string host = hostport.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = std::atoi(hostport.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return InvalidArgument("address "" + std::string(address) + "" has no valid port");
  up->target.kind = http2::ConnectTarget::Kind::kTcp;
  up->target.host = host;
  up->target.port = port;
  up->authority = hostport;
  if (parsed->scheme == Scheme::kDns && !parsed->authority.empty())
    log::Warn("a dns:// name server in a node address is not used: the system resolver resolves the name",
              {{"address", std::string(address)}});
  if (parsed->scheme == Scheme::kTls) {
    if (!make_tls) return FailedPrecondition("tls:// nodes need TLS, which this praefect was not given");
    up->make_secure = [make_tls, host] { return make_tls(host); };
  }
  return std::shared_ptr<const http2::Upstream>(std::move(up));
}

namespace {

// grpc.health.v1.HealthCheckResponse: field 1 (status, enum) SERVING = 1.
bool IsServing(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // The response has this one field; read the last occurrence of it.
  int status = 0;
  size_t i = 0;
  while (i < bytes.size()) {
    unsigned char tag = static_cast<unsigned char>(bytes[i++]);
    if (tag != 0x08 || i >= bytes.size()) return false;  // only field 1, varint
    uint64_t v = 0;
    int shift = 0;
    while (i < bytes.size()) {
      unsigned char b = static_cast<unsigned char>(bytes[i++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) == 0 || shift > 63) break;
    }
    status = static_cast<int>(v);
  }
  return status == 1;
}

// One health check in flight: owns its context and buffers until grpc's
// callback runs.
struct HealthCall {
  grpc::ClientContext ctx;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

void StartHealthCheck(const std::shared_ptr<grpc::Channel>& channel, std::chrono::milliseconds timeout,
                      std::function<void(Status)> done) {
  auto call = std::make_shared<HealthCall>();
  // An empty HealthCheckRequest: a ByteBuffer with one empty slice (a
  // default-constructed ByteBuffer is no message at all to grpc).
  grpc::Slice empty;
  call->request = grpc::ByteBuffer(&empty, 1);
  call->ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::GenericStub stub(channel);
  stub.UnaryCall(&call->ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &call->request,
                 &call->response, [call, done = std::move(done)](grpc::Status st) {
                   if (!st.ok()) {
                     done(Status(static_cast<StatusCode>(st.error_code()), st.error_message()));
                   } else if (!IsServing(call->response)) {
                     done(Unavailable("health check: the node is not SERVING"));
                   } else {
                     done(Status::Ok());
                   }
                 });
}

}  // namespace

Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel, std::chrono::milliseconds timeout) {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  Status result;
  StartHealthCheck(channel, timeout, [&](Status st) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(st);
    finished = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return finished; });
  return result;
}

StatusOr<std::unique_ptr<NodeSet>> NodeSet::Create(const config::Config& config,
                                                   const grpc::ChannelArguments& args,
                                                   const MakeClientTls& make_tls,
                                                   const MakeBackchannel& make_backchannel,
                                                   const MakeInterceptors& interceptors) {
  std::unique_ptr<NodeSet> set(new NodeSet());
  for (const auto& vs_config : config.virtual_storages) {
    VirtualStorage vs;
    vs.name = vs_config.name;
    vs.replication_factor = std::max(0, vs_config.default_replication_factor);
    for (size_t i = 0; i < vs_config.nodes.size(); ++i) {
      const auto& n = vs_config.nodes[i];
      auto node = std::make_unique<Node>();
      node->virtual_storage = vs.name;
      node->storage = n.storage;
      node->address = n.address;
      node->SetToken(n.token);
      auto channel = Dial(n.address, args, interceptors);
      if (!channel.ok())
        return InvalidArgument(node->Label() + ": address \"" + n.address + "\": " + channel.status().message());
      node->channel = std::move(*channel);
      auto upstream = UpstreamFor(n.address, node->Label(), make_tls);
      if (!upstream.ok())
        return InvalidArgument(node->Label() + ": address \"" + n.address + "\": " + upstream.status().message());
      if (make_backchannel && !(*upstream)->tls()) {
        // A second pool entry (the pool keys connections by Upstream): the
        // same address, dialled with the backchannel.
        auto with_backchannel = std::make_shared<http2::Upstream>(**upstream);
        with_backchannel->make_secure = [make_backchannel, peer = (*upstream)->target.Describe()] {
          return make_backchannel(peer);
        };
        node->voting_upstream = std::move(with_backchannel);
        node->backchannel = true;
      }
      node->upstream = std::move(*upstream);
      if (n.primary) vs.primary = i;
      vs.nodes.push_back(std::move(node));
    }
    if (vs.nodes.empty()) return InvalidArgument("virtual storage \"" + vs.name + "\" has no nodes");
    set->virtual_storages_.push_back(std::move(vs));
  }
  return set;
}

NodeSet::~NodeSet() { StopHealthChecks(); }

const VirtualStorage* NodeSet::Find(std::string_view name) const {
  for (const auto& vs : virtual_storages_) {
    if (vs.name == name) return &vs;
  }
  return nullptr;
}

void NodeSet::CheckAll(std::chrono::milliseconds timeout) {
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  for (const auto& vs : virtual_storages_) pending->left += vs.nodes.size();
  for (const auto& vs : virtual_storages_) {
    for (const auto& node_ptr : vs.nodes) {
      Node* node = node_ptr.get();
      const auto started = std::chrono::steady_clock::now();
      StartHealthCheck(node->channel, timeout, [this, node, pending, started](Status st) {
        if (observer_) observer_(*node, std::chrono::steady_clock::now() - started, st.ok());
        bool was = node->healthy.exchange(st.ok());
        if (was != st.ok()) {
          if (st.ok()) {
            log::Info("node is healthy", {{"virtual_storage", node->virtual_storage}, {"storage", node->storage}});
          } else {
            log::Warn("node is unhealthy", {{"virtual_storage", node->virtual_storage},
                                            {"storage", node->storage},
                                            {"address", node->address},
                                            {"error", st.message()}});
          }
        }
        std::lock_guard<std::mutex> lock(pending->mu);
        if (--pending->left == 0) pending->cv.notify_all();
      });
    }
  }
  std::unique_lock<std::mutex> lock(pending->mu);
  pending->cv.wait(lock, [&] { return pending->left == 0; });
}

void NodeSet::StartHealthChecks(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  checker_ = std::thread([this, interval, timeout] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      CheckAll(timeout);
      if (round_observer_) round_observer_();
      lock.lock();
      cv_.wait_for(lock, interval, [this] { return stopping_ || check_requested_; });
      check_requested_ = false;
    }
  });
}

void NodeSet::RequestCheck() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    check_requested_ = true;
  }
  cv_.notify_all();
}

void NodeSet::StopHealthChecks() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (checker_.joinable()) checker_.join();
}

}  // namespace praefect::nodes
