#include "blob_service.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace praefect::storagenode {
namespace {

// Reads one line (the cat-file header) byte by byte, so nothing of the
// object body is consumed.
bool ReadLine(ChildProcess& child, std::string* line) {
  char c;
  line->clear();
  while (child.Read(&c, 1) == 1) {
    if (c == '\n') return true;
    line->push_back(c);
    if (line->size() > 4096) return false;
  }
  return false;
}

}  // namespace

grpc::Status BlobServiceImpl::GetBlob(grpc::ServerContext* ctx, const gitaly::GetBlobRequest* req,
                                      grpc::ServerWriter<gitaly::GetBlobResponse>* writer) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (req->oid().empty()) return ToGrpc(InvalidArgument("GetBlob: empty Oid"));
  if (req->oid().find_first_of(std::string("\n\0 ", 3)) != std::string::npos)
    return ToGrpc(InvalidArgument("GetBlob: invalid Oid \"" + req->oid() + "\""));

  auto child = ChildProcess::Spawn(GitArgv(deps_->git, *path, {"cat-file", "--batch"}),
                                   GitEnvironment(deps_->git), req->oid() + "\n");
  if (!child.ok()) return ToGrpc(child.status());
  std::string header;
  if (!ReadLine(**child, &header)) {
    GitResult r = (*child)->Wait();
    return ToGrpc(Internal("GetBlob: git cat-file: " + r.err));
  }
  // "<oid> <type> <size>" or "<name> missing": Gitaly answers a missing or
  // non-blob object with one empty message.
  std::istringstream fields(header);
  std::string oid, type;
  long long size = -1;
  fields >> oid >> type >> size;
  if (type != "blob" || size < 0) {
    (*child)->Kill();
    (*child)->Wait();
    writer->Write(gitaly::GetBlobResponse());
    return grpc::Status::OK;
  }
  long long to_send = req->limit() < 0 ? size : std::min<long long>(size, req->limit());

  gitaly::GetBlobResponse msg;
  msg.set_size(size);
  msg.set_oid(oid);
  std::string buf(kChunkSize, '\0');
  bool first = true;
  while (to_send > 0 || first) {
    size_t want = static_cast<size_t>(std::min<long long>(to_send, static_cast<long long>(kChunkSize)));
    size_t got = want == 0 ? 0 : (*child)->ReadFull(buf.data(), want);
    if (got < want) {
      GitResult r = (*child)->Wait();
      return ToGrpc(Internal("GetBlob: short read from git cat-file: " + r.err));
    }
    msg.set_data(buf.data(), got);
    if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "GetBlob: client went away");
    msg.Clear();
    to_send -= static_cast<long long>(got);
    first = false;
  }
  // Whatever is left of the object (a limit) is not wanted.
  (*child)->Kill();
  (*child)->Wait();
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
