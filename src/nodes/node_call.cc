#include "nodes/node_call.h"

#include <grpcpp/generic/generic_stub.h>

#include <condition_variable>
#include <mutex>

#include "auth/token.h"

namespace praefect::nodes {

grpc::Status CallNode(const Node& node, const std::string& method, const std::string& request,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  return CallNodeForAnswer(node, method, request, timeout, nullptr, metadata).status;
}

NodeAnswer CallNodeForAnswer(const Node& node, const std::string& method, const std::string& request,
                             std::chrono::milliseconds timeout, const std::atomic<bool>* abandon,
                             const std::vector<std::pair<std::string, std::string>>& metadata) {
  // How often a waiting caller looks at `abandon`.
  constexpr std::chrono::milliseconds kAbandonPoll{100};
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
  NodeAnswer answer;
  grpc::GenericStub stub(node.channel);
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &in, &out, [&](grpc::Status st) {
    std::lock_guard lock(mu);
    answer.status = std::move(st);
    done = true;
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  bool cancelled = false;
  while (!done) {
    if (abandon == nullptr) {
      cv.wait(lock, [&] { return done; });
      break;
    }
    cv.wait_for(lock, kAbandonPoll, [&] { return done; });
    if (!done && !cancelled && abandon->load()) {
      // The callback still comes (CANCELLED); `ctx` must outlive it.
      ctx.TryCancel();
      cancelled = true;
    }
  }
  // An empty response (every field at its default) has no bytes, and may
  // have no buffer at all.
  if (answer.status.ok() && out.Length() > 0) {
    grpc::Slice whole;
    if (!out.DumpToSingleSlice(&whole).ok()) {
      // Never read as an empty (default) answer.
      answer.status = grpc::Status(grpc::StatusCode::INTERNAL, "the response of " + method + " could not be read");
    } else {
      answer.response.assign(reinterpret_cast<const char*>(whole.begin()), whole.size());
    }
  }
  return answer;
}

}  // namespace praefect::nodes
