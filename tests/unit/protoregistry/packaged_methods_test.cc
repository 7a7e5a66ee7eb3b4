// Checks the registry against the packaged Gitaly protos, independently of
// the registry's own code: the rpc list comes from the .proto text, the
// classification from the descriptors' op_type options.

#include "protoregistry/packaged_methods.h"

#include <google/protobuf/descriptor.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "protoregistry/registry.h"
#include "shared.pb.h"
#include "test_support.h"

namespace praefect::protoregistry {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct ProtoText {
  std::set<std::string> files;    // "blob.proto"
  std::set<std::string> methods;  // "/gitaly.BlobService/GetBlob"
};

// Reads the rpc declarations straight from the .proto files.
ProtoText ReadProtoDir() {
  ProtoText out;
  const std::regex package_re(R"(^\s*package\s+([\w.]+)\s*;)");
  const std::regex service_re(R"(^\s*service\s+(\w+))");
  const std::regex rpc_re(R"(^\s*rpc\s+(\w+)\s*\()");
  for (const auto& entry : std::filesystem::directory_iterator(GITALY_PROTO_DIR)) {
    if (entry.path().extension() != ".proto") continue;
    out.files.insert(entry.path().filename().string());
    std::ifstream in(entry.path());
    std::string line, package, service;
    std::smatch m;
    while (std::getline(in, line)) {
      line = line.substr(0, line.find("//"));
      if (std::regex_search(line, m, package_re)) package = m[1];
      if (std::regex_search(line, m, service_re)) service = m[1];
      if (std::regex_search(line, m, rpc_re)) out.methods.insert("/" + package + "." + service + "/" + m[1].str());
    }
  }
  return out;
}

std::unique_ptr<Registry> MustCreate() {
  StatusOr<std::unique_ptr<Registry>> registry = Registry::Create({});
  assert_status_ok(registry.status());
  return std::move(registry).value();
}

bool FromPackaged(const MethodInfo& info) {
  return info.source == Source::kPackaged || info.source == Source::kTableOverride;
}

void EveryRpcOfEveryFileIsRegistered(void** /*state*/) {
  const ProtoText text = ReadProtoDir();
  // golang-gitaly-proto-dev 1.37.0 declares 149; the test trusts the text.
  expect_that(text.methods.size() >= 100, "the .proto files to declare the Gitaly rpcs");

  std::set<std::string> listed(PackagedProtoFiles().begin(), PackagedProtoFiles().end());
  expect_that(listed == text.files, "PackagedProtoFiles() to list every .proto file of " GITALY_PROTO_DIR);

  auto registry = MustCreate();
  std::set<std::string> registered;
  for (const MethodInfo& info : registry->methods()) {
    if (FromPackaged(info)) registered.insert(info.full_name);
  }
  for (const std::string& name : text.methods) {
    expect_that(registered.contains(name), name + " (declared in the .proto text) to be registered as packaged");
  }
  assert_int_equal(registered.size(), text.methods.size());

  StatusOr<std::vector<PackagedMethod>> loaded = LoadPackagedMethods(PackagedProtoFiles());
  assert_status_ok(loaded.status());
  assert_int_equal(loaded->size(), text.methods.size());
}

void MissingDescriptorsAreAnError(void** /*state*/) {
  const std::string_view files[] = {"blob.proto", "no-such-file.proto"};
  StatusOr<std::vector<PackagedMethod>> loaded = LoadPackagedMethods(files);
  expect_that(loaded.status().code() == StatusCode::kInternal, "INTERNAL for a file that is not linked in");
  expect_that(Contains(loaded.status().message(), "no-such-file.proto"), "the file to be named");
  expect_that(Contains(loaded.status().message(), "whole-archive"), "the fix to be named");
}

// The field at `path`, walking the descriptors; nullptr if there is none.
const FieldDescriptor* Resolve(const Descriptor* message, const FieldPath& path) {
  const FieldDescriptor* field = nullptr;
  for (uint32_t number : path) {
    if (message == nullptr) return nullptr;
    field = message->FindFieldByNumber(static_cast<int>(number));
    if (field == nullptr || field->is_repeated()) return nullptr;
    message = field->message_type();
  }
  return field;
}

bool IsRepositoryAt(const Descriptor* request, const FieldPath& path) {
  const FieldDescriptor* field = Resolve(request, path);
  return field != nullptr && field->message_type() != nullptr &&
         field->message_type()->full_name() == "gitaly.Repository";
}

void AgreesWithTheDescriptors(void** /*state*/) {
  auto registry = MustCreate();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : ReadProtoDir().methods) {
    std::string dotted = name.substr(1);
    dotted[dotted.find('/')] = '.';
    const MethodDescriptor* method = pool->FindMethodByName(dotted);
    expect_that(method != nullptr, name + " to be in the generated descriptor pool");
    const MethodInfo* info = registry->Lookup(name);
    expect_that(info != nullptr, name + " to be registered");
    const std::string what = name + ": ";

    Shape shape = method->client_streaming() ? (method->server_streaming() ? Shape::kBidiStream : Shape::kClientStream)
                                             : (method->server_streaming() ? Shape::kServerStream : Shape::kUnary);
    expect_that(info->shape == shape, what + "shape " + std::string(ShapeName(shape)));

    const gitaly::OperationMsg& op = method->options().GetExtension(gitaly::op_type);
    if (info->source == Source::kPackaged) {
      expect_that(op.op() == gitaly::OperationMsg::MUTATOR ? info->operation == Operation::kMutator
                                                           : info->operation == Operation::kAccessor,
                  what + "operation as in op_type");
      if (op.op() == gitaly::OperationMsg::MUTATOR && op.scope_level() == gitaly::OperationMsg::REPOSITORY) {
        expect_that(info->scope == Scope::kRepository, what + "repository scope as in op_type");
        expect_that(FormatFieldPath(info->target_repository) == op.target_repository_field(),
                    what + "target \"" + op.target_repository_field() + "\" as in op_type");
      }
    } else {
      expect_that(info->source == Source::kTableOverride, what + "packaged or overridden");
    }

    const Descriptor* request = method->input_type();
    switch (info->scope) {
      case Scope::kRepository:
        expect_that(IsRepositoryAt(request, info->target_repository), what + "target to be a gitaly.Repository");
        expect_that(info->storage.empty(), what + "no storage path");
        break;
      case Scope::kStorage: {
        const FieldDescriptor* field = Resolve(request, info->storage);
        expect_that(field != nullptr && field->type() == FieldDescriptor::TYPE_STRING &&
                        field->name() == "storage_name",
                    what + "storage path to be the string storage_name");
        expect_that(info->target_repository.empty(), what + "no target with storage scope");
        break;
      }
      case Scope::kServer:
        expect_that(info->target_repository.empty() && info->storage.empty(), what + "no paths with server scope");
        break;
    }
    if (!info->additional_repository.empty()) {
      expect_that(IsRepositoryAt(request, info->additional_repository),
                  what + "additional to be a gitaly.Repository");
      expect_that(info->additional_repository != info->target_repository, what + "additional != target");
    }
  }
}

// The survey of the packaged protos: every method whose classification is
// not simply "op_type, repository at field 1, nothing else".
const std::map<std::string, std::string> kAdditional = {
    {"/gitaly.ConflictsService/ResolveConflicts", "1.3"},          // header.target_repository
    {"/gitaly.ObjectPoolService/CreateObjectPool", "2"},           // origin
    {"/gitaly.ObjectPoolService/LinkRepositoryToObjectPool", "1.1"},  // object_pool.repository (table)
    {"/gitaly.ObjectPoolService/UnlinkRepositoryFromObjectPool", "2.1"},  // object_pool.repository
    {"/gitaly.ObjectPoolService/FetchIntoObjectPool", "1"},        // origin (table)
    {"/gitaly.OperationService/UserCherryPick", "7"},              // start_repository
    {"/gitaly.OperationService/UserRevert", "7"},                  // start_repository
    {"/gitaly.OperationService/UserCommitFiles", "1.8"},           // header.start_repository
    {"/gitaly.OperationService/UserRebase", "6"},                  // remote_repository
    {"/gitaly.OperationService/UserRebaseConfirmable", "1.6"},     // header.remote_repository
    {"/gitaly.RemoteService/FetchInternalRemote", "2"},            // remote_repository
    {"/gitaly.RepositoryService/FetchSourceBranch", "2"},          // source_repository
    {"/gitaly.RepositoryService/CreateFork", "2"},                 // source_repository
    {"/gitaly.RepositoryService/CloneFromPool", "2.1"},            // pool.repository
    {"/gitaly.RepositoryService/CloneFromPoolInternal", "2.1"},    // pool.repository (table; 3 also)
    {"/gitaly.RepositoryService/PreFetch", "2"},                   // target_repository (table; 3.1 also)
};
const std::map<std::string, std::string> kTargetNotOne = {
    {"/gitaly.ConflictsService/ResolveConflicts", "1.1"},      {"/gitaly.ObjectPoolService/CreateObjectPool", "1.1"},
    {"/gitaly.ObjectPoolService/DeleteObjectPool", "1.1"},     {"/gitaly.OperationService/UserCommitFiles", "1.1"},
    {"/gitaly.OperationService/UserRebaseConfirmable", "1.1"}, {"/gitaly.OperationService/UserApplyPatch", "1.1"},
    {"/gitaly.ObjectPoolService/LinkRepositoryToObjectPool", "2"},
    {"/gitaly.ObjectPoolService/FetchIntoObjectPool", "2.1"},
};
const std::set<std::string> kStorageScoped = {
    "/gitaly.NamespaceService/AddNamespace",    "/gitaly.NamespaceService/RemoveNamespace",
    "/gitaly.NamespaceService/RenameNamespace", "/gitaly.NamespaceService/NamespaceExists",
    "/gitaly.StorageService/ListDirectories",   "/gitaly.StorageService/DeleteAllRepositories",
};
const std::set<std::string> kServerScoped = {
    "/gitaly.ServerService/ServerInfo",
    "/gitaly.RemoteService/FindRemoteRepository",
    "/gitaly.CleanupService/CloseSession",
};

void MatchesTheSurvey(void** /*state*/) {
  auto registry = MustCreate();
  std::set<std::string> seen_additional, seen_target, seen_storage, seen_server;
  for (const MethodInfo& info : registry->methods()) {
    if (!FromPackaged(info)) continue;
    const std::string& name = info.full_name;
    if (!info.additional_repository.empty()) {
      seen_additional.insert(name);
      expect_that(kAdditional.contains(name) && kAdditional.at(name) == FormatFieldPath(info.additional_repository),
                  name + ": additional " + FormatFieldPath(info.additional_repository) + " as surveyed");
    }
    if (info.scope == Scope::kRepository && info.target_repository != FieldPath{1}) {
      seen_target.insert(name);
      expect_that(kTargetNotOne.contains(name) && kTargetNotOne.at(name) == FormatFieldPath(info.target_repository),
                  name + ": target " + FormatFieldPath(info.target_repository) + " as surveyed");
    }
    if (info.scope == Scope::kStorage) {
      seen_storage.insert(name);
      expect_that(info.storage == FieldPath{1}, name + ": storage_name is field 1");
    }
    if (info.scope == Scope::kServer) seen_server.insert(name);
  }
  auto keys = [](const std::map<std::string, std::string>& m) {
    std::set<std::string> out;
    for (const auto& [k, v] : m) out.insert(k);
    return out;
  };
  expect_that(seen_additional == keys(kAdditional), "exactly the surveyed methods to have an additional repository");
  expect_that(seen_target == keys(kTargetNotOne), "exactly the surveyed methods to target a path other than 1");
  expect_that(seen_storage == kStorageScoped, "exactly the surveyed methods to be storage-scoped");
  expect_that(seen_server == kServerScoped, "exactly the surveyed methods to be server-scoped");

  // The derivation rule is recorded for listings.
  const std::pair<const char*, const char*> notes[] = {
      {"/gitaly.BlobService/GetBlob", "(A1)"},          {"/gitaly.NamespaceService/NamespaceExists", "(A2)"},
      {"/gitaly.ServerService/ServerInfo", "(A3)"},     {"/gitaly.NamespaceService/AddNamespace", "(M1)"},
      {"/gitaly.RepositoryService/CreateFork", "(R1)"}, {"/gitaly.RepositoryService/PreFetch", "override: "},
  };
  for (const auto& [name, rule] : notes) {
    const MethodInfo* info = registry->Lookup(name);
    expect_that(info != nullptr && Contains(info->note, rule), std::string(name) + " note to contain " + rule);
  }
  const MethodInfo* create = registry->Lookup("/gitaly.RepositoryService/CreateRepository");
  expect_that(create != nullptr && create->note.empty(), "a plain op_type method to need no note");
}

}  // namespace
}  // namespace praefect::protoregistry

int main() {
  using namespace praefect::protoregistry;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(EveryRpcOfEveryFileIsRegistered),
      cmocka_unit_test(MissingDescriptorsAreAnError),
      cmocka_unit_test(AgreesWithTheDescriptors),
      cmocka_unit_test(MatchesTheSurvey),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
