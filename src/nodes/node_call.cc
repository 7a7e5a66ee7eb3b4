#include "nodes/node_call.h"

#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <mutex>

#include "auth/token.h"

namespace praefect::nodes {

grpc::Status CallNode(const Node& node, const std::string& method, const std::string& request,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  return CallNodeForResponse(node, method, request, timeout, nullptr, metadata);
}

grpc::Status CallNodeForResponse(const Node& node, const std::string& method, const std::string& request,
                                 std::chrono::milliseconds timeout, std::string* response,
                                 const std::vector<std::pair<std::string, std::string>>& metadata) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  if (std::string token = node.Token(); !token.empty())
    ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                    auth::BearerV2(token, std::chrono::system_clock::now()));
  for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  grpc::GenericStub stub(node.channel);
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out, [&](grpc::Status st) {
    std::lock_guard lock(mu);
    result = std::move(st);
    done = true;
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  if (response != nullptr && result.ok()) {
    std::vector<grpc::Slice> slices;
    if (!out.Dump(&slices).ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the node's answer");
    response->clear();
    for (const auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return result;
}

}  // namespace praefect::nodes
