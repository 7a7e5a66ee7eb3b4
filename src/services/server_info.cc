#include "services/server_info.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "auth/token.h"
#include "log/log.h"
#include "server.grpc.pb.h"

namespace praefect::services {

std::string DeriveFilesystemId(std::string_view name) {
  auto digest = auth::Sha256(name);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x80);  // version 8 (custom)
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

StatusOr<std::string> AnswerServerInfo(const nodes::NodeSet& nodes, std::chrono::milliseconds node_timeout) {
  struct Answer {
    const nodes::Node* node = nullptr;
    grpc::ClientContext ctx;
    gitaly::ServerInfoResponse resp;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Answer>> answers;
  std::mutex mu;
  std::condition_variable cv;
  size_t left = 0;
  for (const auto& vs : nodes.virtual_storages()) {
    for (const auto& node : vs.nodes) {
      auto a = std::make_unique<Answer>();
      a->node = node.get();
      a->ctx.set_deadline(std::chrono::system_clock::now() + node_timeout);
      answers.push_back(std::move(a));
      ++left;
    }
  }
  gitaly::ServerInfoRequest request;
  const auto now = std::chrono::system_clock::now();
  for (auto& a : answers) {
    Answer* answer = a.get();
    if (std::string token = answer->node->Token(); !token.empty())
      answer->ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey), auth::BearerV2(token, now));
    auto stub = gitaly::ServerService::NewStub(answer->node->channel);
    stub->async()->ServerInfo(&answer->ctx, &request, &answer->resp, [&, answer](grpc::Status st) {
      std::lock_guard<std::mutex> lock(mu);
      answer->status = std::move(st);
      if (--left == 0) cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return left == 0; });
  }

  gitaly::ServerInfoResponse response;
  gitaly::ServerInfoResponse* resp = &response;
  bool versions_set = false;
  size_t i = 0;
  for (const auto& vs : nodes.virtual_storages()) {
    gitaly::ServerInfoResponse::StorageStatus* status = resp->add_storage_statuses();
    status->set_storage_name(vs.name);
    status->set_filesystem_id(DeriveFilesystemId(vs.name));
    for (const auto& node : vs.nodes) {
      Answer& a = *answers[i++];
      if (!a.status.ok()) {
        log::Warn("ServerInfo: node did not answer",
                  {{"node", node->Label()}, {"error", a.status.error_message()}});
        continue;
      }
      if (!versions_set) {
        resp->set_server_version(a.resp.server_version());
        resp->set_git_version(a.resp.git_version());
        versions_set = true;
      }
      for (const auto& s : a.resp.storage_statuses()) {
        if (s.storage_name() != node->storage) continue;
        if (s.readable()) status->set_readable(true);
        if (node.get() == &vs.Primary()) {
          status->set_writeable(s.writeable());
          status->set_fs_type(s.fs_type());
        }
      }
    }
  }
  return response.SerializeAsString();
}

}  // namespace praefect::services
