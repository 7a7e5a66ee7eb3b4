// The coordinator's decisions: authentication, classification, routing and
// the rewrite of storage names, on real request messages from the packaged
// protos. No network: node channels are created but never dialed.
#include "coordinator_fixture.h"

namespace {

using namespace coordinator_test;  // NOLINT: the fixture

void RepositoryCallGoesToThePrimaryRewritten(void**) {
  Fixture f;
  auto route = f.Decide("/gitaly.RepositoryService/RepositoryExists", Exists("default", "group/project.git"));
  assert_status_ok(route.status());
  assert_true(route->upstream == f.NodeNamed("gitaly-2").upstream);
  expect_that(route->label == "virtual storage \"default\", node \"gitaly-2\"", route->label);
  gitaly::RepositoryExistsRequest sent;
  assert_true(route->first_message.has_value() && sent.ParseFromString(*route->first_message));
  assert_string_equal(sent.repository().storage_name().c_str(), "gitaly-2");
  assert_string_equal(sent.repository().relative_path().c_str(), "group/project.git");
  // The client's token is replaced by one signed with the node's token.
  std::string auth = Find(route->set_metadata, "authorization");
  expect_that(auth == praefect::auth::BearerV2("token-2", kNow), "node token: " + auth);
  assert_status_ok(praefect::auth::VerifyV2(auth, "token-2", kNow));
  // A correlation id is created when the client sent none.
  expect_that(!Find(route->set_metadata, "x-gitlab-correlation-id").empty(), "correlation id created");
}

void CorrelationIdKeptAndTokenlessNodeGetsNoAuthorization(void**) {
  Fixture f;
  f.metadata.push_back({"x-gitlab-correlation-id", "abc123"});
  f.router = PrimaryRouter();
  auto route = f.Decide("/gitaly.RepositoryService/RepositoryExists", Exists("other", "x.git"));
  assert_status_ok(route.status());
  expect_that(Find(route->set_metadata, "x-gitlab-correlation-id").empty(), "the client's id is kept, not set");
  bool dropped = false;
  for (const auto& k : route->drop_metadata) dropped |= k == "authorization";
  expect_that(dropped, "a node without a token gets no authorization header");
}

void Refusals(void**) {
  Fixture f;
  struct Case {
    std::string method, message;
    StatusCode code;
    std::string needle;
  } cases[] = {
      {"/gitaly.RepositoryService/RepositoryExists", Exists("nope", "a.git"), StatusCode::kInvalidArgument,
       "virtual storage \"nope\" does not exist"},
      {"/gitaly.RepositoryService/RepositoryExists", "", StatusCode::kInvalidArgument, "names no repository"},
      {"/gitaly.RepositoryService/RepositoryExists", std::string("\x0a\x05\x12", 3), StatusCode::kInvalidArgument,
       "malformed protobuf message"},
      {"/gitaly.NoSuchService/Frobnicate", "", StatusCode::kUnimplemented, "/gitaly.NoSuchService/Frobnicate"},
  };
  for (const auto& c : cases) {
    auto route = f.Decide(c.method, c.message);
    expect_that(route.status().code() == c.code, c.method + ": " + route.status().message());
    expect_that(route.status().message().find(c.needle) != std::string::npos,
                "\"" + route.status().message() + "\" contains \"" + c.needle + "\"");
  }
  praefect::http2::CallInfo call;
  call.method = "/gitaly.RepositoryService/RepositoryExists";
  call.metadata = &f.metadata;
  auto none = f.coordinator->Decide(call);
  assert_int_equal(static_cast<int>(none.status().code()), static_cast<int>(StatusCode::kInvalidArgument));
}

// SIGHUP reload: the token is replaced for calls that start afterwards, and
// transitioning can be switched on and off.
void AuthReplacedLive(void**) {
  Fixture f;
  assert_status_ok(f.coordinator->Authenticate(f.metadata));
  f.coordinator->SetAuth("rotated", false);
  assert_int_equal(static_cast<int>(f.coordinator->Authenticate(f.metadata).code()),
                   static_cast<int>(StatusCode::kPermissionDenied));
  f.coordinator->SetAuth("rotated", true);
  assert_status_ok(f.coordinator->Authenticate(f.metadata));
  std::string rotated = praefect::auth::BearerV2("rotated", kNow);
  Metadata md;
  md.push_back({"authorization", rotated});
  f.coordinator->SetAuth("rotated", false);
  assert_status_ok(f.coordinator->Authenticate(md));
  f.coordinator->SetAuth("", false);
  Metadata none;
  assert_status_ok(f.coordinator->Authenticate(none));
}

void Authentication(void**) {
  Fixture f;
  f.metadata.clear();
  auto route = f.Decide("/gitaly.RepositoryService/RepositoryExists", Exists("default", "a.git"));
  assert_int_equal(static_cast<int>(route.status().code()), static_cast<int>(StatusCode::kUnauthenticated));
  std::string wrong = praefect::auth::BearerV2("wrong", kNow);
  f.metadata.push_back({"authorization", wrong});
  route = f.Decide("/gitaly.RepositoryService/RepositoryExists", Exists("default", "a.git"));
  assert_int_equal(static_cast<int>(route.status().code()), static_cast<int>(StatusCode::kPermissionDenied));

  Fixture transitioning(true);
  transitioning.metadata.clear();
  route = transitioning.Decide("/gitaly.RepositoryService/RepositoryExists", Exists("default", "a.git"));
  assert_status_ok(route.status());
}

void AdditionalRepositoryRewritten(void**) {
  Fixture f;
  gitaly::CreateForkRequest req;
  req.mutable_repository()->set_storage_name("default");
  req.mutable_repository()->set_relative_path("fork.git");
  req.mutable_source_repository()->set_storage_name("default");
  req.mutable_source_repository()->set_relative_path("source.git");
  auto route = f.Decide("/gitaly.RepositoryService/CreateFork", req.SerializeAsString());
  assert_status_ok(route.status());
  gitaly::CreateForkRequest sent;
  assert_true(sent.ParseFromString(*route->first_message));
  assert_string_equal(sent.repository().storage_name().c_str(), "gitaly-2");
  assert_string_equal(sent.source_repository().storage_name().c_str(), "gitaly-2");
  assert_string_equal(sent.source_repository().relative_path().c_str(), "source.git");

  req.mutable_source_repository()->set_storage_name("other");
  route = f.Decide("/gitaly.RepositoryService/CreateFork", req.SerializeAsString());
  expect_that(!route.ok() && route.status().message().find("\"other\"") != std::string::npos,
              route.status().message());
}

void StorageScopedCalls(void**) {
  Fixture f;
  gitaly::NamespaceExistsRequest exists;
  exists.set_storage_name("default");
  exists.set_name("ns");
  // No node healthy yet: UNAVAILABLE naming the virtual storage.
  auto route = f.Decide("/gitaly.NamespaceService/NamespaceExists", exists.SerializeAsString());
  expect_that(route.status().code() == StatusCode::kUnavailable &&
                  route.status().message().find("\"default\"") != std::string::npos,
              route.status().message());
  // The primary is unhealthy, gitaly-3 is: the accessor goes there.
  f.NodeNamed("gitaly-3").healthy = true;
  route = f.Decide("/gitaly.NamespaceService/NamespaceExists", exists.SerializeAsString());
  assert_status_ok(route.status());
  assert_true(route->upstream == f.NodeNamed("gitaly-3").upstream);
  gitaly::NamespaceExistsRequest sent;
  assert_true(sent.ParseFromString(*route->first_message));
  assert_string_equal(sent.storage_name().c_str(), "gitaly-3");
  assert_string_equal(sent.name().c_str(), "ns");

  // A mutator goes to a healthy node (the configured primary gitaly-2 is
  // not), and (after success) to the others.
  gitaly::AddNamespaceRequest add;
  add.set_storage_name("default");
  add.set_name("ns");
  route = f.Decide("/gitaly.NamespaceService/AddNamespace", add.SerializeAsString());
  assert_status_ok(route.status());
  assert_true(route->upstream == f.NodeNamed("gitaly-3").upstream);
  // The configured primary first while it is healthy.
  f.NodeNamed("gitaly-2").healthy = true;
  route = f.Decide("/gitaly.NamespaceService/AddNamespace", add.SerializeAsString());
  assert_status_ok(route.status());
  assert_true(route->upstream == f.NodeNamed("gitaly-2").upstream);
  expect_that(static_cast<bool>(route->finalizer), "a finalizer fans the mutator out");
  // A failed primary call fans out nothing (and must not touch the network).
  route->finalizer(praefect::Status(praefect::StatusCode::kInternal, "boom"));
}

// Every path-like field is checked before anything is looked up or
// registered: the target (read or write, registered or not), the additional
// repository, RenameRepository's destination, namespace names. Each refusal
// is INVALID_ARGUMENT naming the method and the rule.
void PathsValidatedBeforeRouting(void**) {
  praefect::datastore::MemoryDatastore store;
  Fixture f(false, &store);
  for (const auto& n : {"gitaly-1", "gitaly-2", "gitaly-3"}) f.NodeNamed(n).healthy = true;
  auto refused = [&](const std::string& method, const std::string& message, const std::string& fragment) {
    auto route = f.Decide(method, message);
    expect_that(route.status().code() == StatusCode::kInvalidArgument &&
                    route.status().message().find(method + ": ") == 0 &&
                    route.status().message().find(fragment) != std::string::npos,
                method + " refused with \"" + fragment + "\", got " + route.status().ToString());
  };
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "repository path not set"},
      {"../../etc", "relative path escapes root directory"},
      {"/etc/passwd", "is absolute"},
      {std::string("legit.git\0evil", 14), "NUL byte at offset 9"},
      {"a/./b", "has a \".\" segment"},
      {"+gitaly/x.git", "+gitaly"},
      {std::string(3000, 'z'), "3000 bytes long"},
  };
  for (const auto& [path, fragment] : bad) {
    gitaly::CreateRepositoryRequest create;
    create.mutable_repository()->set_storage_name("default");
    create.mutable_repository()->set_relative_path(path);
    refused("/gitaly.RepositoryService/CreateRepository", create.SerializeAsString(), fragment);
    refused("/gitaly.RepositoryService/RepositoryExists", Exists("default", path), fragment);
  }
  gitaly::CreateRepositoryRequest no_storage;
  no_storage.mutable_repository()->set_relative_path("a.git");
  refused("/gitaly.RepositoryService/CreateRepository", no_storage.SerializeAsString(), "storage name not set");
  expect_that(!store.GetRepository("default", "legit.git")->has_value(), "nothing registered");

  gitaly::CreateForkRequest fork;
  fork.mutable_repository()->set_storage_name("default");
  fork.mutable_repository()->set_relative_path("fork.git");
  fork.mutable_source_repository()->set_storage_name("default");
  fork.mutable_source_repository()->set_relative_path("../../etc");
  refused("/gitaly.RepositoryService/CreateFork", fork.SerializeAsString(),
          "additional repository's relative path \"../../etc\": relative path escapes root directory");

  // RenameRepository (newer than the packaged protos): field 2 by hand.
  std::string rename = std::string("\x0a\x14\x12\x07" "default" "\x1a\x09" "legit.git") + "\x12\x08" "../evil1";
  refused("/gitaly.RepositoryService/RenameRepository", rename,
          "destination relative path \"../evil1\": relative path escapes root directory");

  gitaly::AddNamespaceRequest add;
  add.set_storage_name("default");
  add.set_name("../../tmp/x");
  refused("/gitaly.NamespaceService/AddNamespace", add.SerializeAsString(), "namespace \"../../tmp/x\"");
  gitaly::RenameNamespaceRequest ns;
  ns.set_storage_name("default");
  ns.set_from("ok");
  ns.set_to("");
  refused("/gitaly.NamespaceService/RenameNamespace", ns.SerializeAsString(), "new namespace is empty");
}

void ServerScopedNotProxied(void**) {
  Fixture f;
  auto route = f.Decide("/gitaly.ServerService/ServerInfo", "");
  assert_int_equal(static_cast<int>(route.status().code()), static_cast<int>(StatusCode::kUnimplemented));
}

// With a datastore: creation registers the repository under a replica
// path, the commit records it, later calls use the replica path, writes are
// recorded with jobs for the other nodes, RemoveRepository unregisters.
void RegisteredRepositories(void**) {
  praefect::datastore::MemoryDatastore store;
  // The legacy mode: the configured primary gitaly-2 takes every write.
  Fixture f(false, &store, /*per_repository=*/false);
  gitaly::CreateRepositoryRequest early;
  early.mutable_repository()->set_storage_name("default");
  early.mutable_repository()->set_relative_path("group/early.git");
  auto refused = f.Decide("/gitaly.RepositoryService/CreateRepository", early.SerializeAsString());
  assert_int_equal(static_cast<int>(refused.status().code()), static_cast<int>(StatusCode::kUnavailable));
  expect_that(refused.status().message().find("failover is disabled") != std::string::npos,
              "an unhealthy legacy primary is named: " + refused.status().message());
  f.NodeNamed("gitaly-2").healthy = true;
  gitaly::CreateRepositoryRequest create;
  create.mutable_repository()->set_storage_name("default");
  create.mutable_repository()->set_relative_path("group/new.git");
  auto route = f.Decide("/gitaly.RepositoryService/CreateRepository", create.SerializeAsString());
  assert_status_ok(route.status());
  gitaly::CreateRepositoryRequest sent;
  assert_true(sent.ParseFromString(*route->first_message));
  assert_string_equal(sent.repository().storage_name().c_str(), "gitaly-2");
  assert_string_equal(sent.repository().relative_path().c_str(), "@cluster/repositories/6b/86/1");
  assert_true(static_cast<bool>(route->commit));
  // Not recorded until the commit sees the node's success.
  assert_false(store.GetRepository("default", "group/new.git")->has_value());
  std::optional<praefect::Status> answer = praefect::Status(praefect::StatusCode::kInternal, "unset");
  route->commit(praefect::Status::Ok(), [&](std::optional<praefect::Status> st) { answer = st; });
  assert_false(answer.has_value());
  auto meta = store.GetRepository("default", "group/new.git");
  assert_true(meta->has_value());
  assert_string_equal((*meta)->primary.c_str(), "gitaly-2");
  assert_int_equal(store.Jobs().size(), 2);  // gitaly-1 and gitaly-3 get update jobs

  // Creating it again is ALREADY_EXISTS; an unknown repository NOT_FOUND.
  route = f.Decide("/gitaly.RepositoryService/CreateRepository", create.SerializeAsString());
  assert_int_equal(static_cast<int>(route.status().code()), static_cast<int>(StatusCode::kAlreadyExists));
  route = f.Decide("/gitaly.RepositoryService/RepositoryExists", Exists("default", "group/other.git"));
  assert_int_equal(static_cast<int>(route.status().code()), static_cast<int>(StatusCode::kNotFound));

  // A write: replica path, then the generation bump on success only.
  gitaly::WriteRefRequest write;
  write.mutable_repository()->set_storage_name("default");
  write.mutable_repository()->set_relative_path("group/new.git");
  route = f.Decide("/gitaly.RepositoryService/WriteRef", write.SerializeAsString());
  assert_status_ok(route.status());
  gitaly::WriteRefRequest written;
  assert_true(written.ParseFromString(*route->first_message));
  assert_string_equal(written.repository().relative_path().c_str(), "@cluster/repositories/6b/86/1");
  route->commit(praefect::Status(praefect::StatusCode::kInternal, "failed"), [&](std::optional<praefect::Status> st) { answer = st; });
  assert_int_equal((*store.GetRepository("default", "group/new.git"))->generation, 0);
  route->commit(praefect::Status::Ok(), [&](std::optional<praefect::Status> st) { answer = st; });
  assert_int_equal((*store.GetRepository("default", "group/new.git"))->generation, 1);

  // Removal unregisters and schedules the other replicas' deletion.
  route = f.Decide("/gitaly.RepositoryService/RemoveRepository", Exists("default", "group/new.git"));
  assert_status_ok(route.status());
  route->commit(praefect::Status(praefect::StatusCode::kNotFound, "gone"), [&](std::optional<praefect::Status> st) { answer = st; });
  expect_that(answer.has_value() && answer->ok(), "a registered repository's removal succeeds");
  assert_false(store.GetRepository("default", "group/new.git")->has_value());
}

// Marks `healthy` storages of "default" healthy, the others not, locally and
// in the store's quorum view (one praefect).
// Per-repository primaries: creation on a healthy node, writes to the
// repository's primary, a new primary elected among up-to-date replicas
// when it fails, none (UNAVAILABLE, nothing sent) when no replica is up to
// date; reads spread over healthy, up-to-date replicas only.
void PerRepositoryPrimariesAndReads(void**) {
  praefect::datastore::MemoryDatastore store;
  Fixture f(false, &store);
  SetHealth(f, store, {"gitaly-1", "gitaly-2", "gitaly-3"});
  gitaly::CreateRepositoryRequest create;
  create.mutable_repository()->set_storage_name("default");
  create.mutable_repository()->set_relative_path("r.git");
  auto route = f.Decide("/gitaly.RepositoryService/CreateRepository", create.SerializeAsString());
  assert_status_ok(route.status());
  route->commit(praefect::Status::Ok(), [](std::optional<praefect::Status>) {});
  const std::string first = Primary(store, "r.git");
  expect_that(!first.empty(), "the creating node is the primary");
  expect_that(route->upstream == f.NodeNamed(first).upstream, "created on the recorded primary");
  std::string caught_up, behind;
  for (const char* n : {"gitaly-1", "gitaly-2", "gitaly-3"}) {
    if (n == first) continue;
    (caught_up.empty() ? caught_up : behind) = n;
  }
  assert_status_ok(store.SetGeneration(1, caught_up, 0));  // one secondary caught up, the other did not

  std::set<std::string> chosen;
  for (int i = 0; i < 64; ++i) {
    route = f.Decide("/gitaly.RepositoryService/CalculateChecksum", Exists("default", "r.git"));
    assert_status_ok(route.status());
    gitaly::RepositoryExistsRequest sent;
    assert_true(sent.ParseFromString(*route->first_message));
    chosen.insert(sent.repository().storage_name());
  }
  expect_that((chosen == std::set<std::string>{first, caught_up}), "reads on both up-to-date replicas only");

  for (const char* method : {"/gitaly.RepositoryService/RepositorySize", "/gitaly.RepositoryService/WriteRef"}) {
    for (int i = 0; i < 16; ++i) {
      route = f.Decide(method, Exists("default", "r.git"));
      assert_status_ok(route.status());
      expect_that(route->upstream == f.NodeNamed(first).upstream, std::string(method) + " on the primary");
    }
  }
  f.metadata.push_back({"gitaly-route-repository-accessor-policy", "primary-only"});
  for (int i = 0; i < 16; ++i) {
    route = f.Decide("/gitaly.RepositoryService/CalculateChecksum", Exists("default", "r.git"));
    expect_that(route->upstream == f.NodeNamed(first).upstream, "primary-only reads on the primary");
  }
  f.metadata.clear();
  f.metadata.push_back({"authorization", f.bearer});

  // The primary fails: reads go to the other up-to-date replica, and the
  // next write elects it (never the outdated one).
  SetHealth(f, store, {caught_up, behind});
  route = f.Decide("/gitaly.RepositoryService/CalculateChecksum", Exists("default", "r.git"));
  expect_that(route->upstream == f.NodeNamed(caught_up).upstream, "reads survive the primary's failure");
  route = f.Decide("/gitaly.RepositoryService/WriteRef", Exists("default", "r.git"));
  assert_status_ok(route.status());
  expect_that(route->upstream == f.NodeNamed(caught_up).upstream, "the write goes to the new primary");
  expect_that(Primary(store, "r.git") == caught_up, "the election is recorded");
  std::optional<praefect::Status> answer;
  route->commit(praefect::Status::Ok(), [&](std::optional<praefect::Status> st) { answer = st; });
  expect_that(!answer.has_value(), "the write on the new primary is recorded and acknowledged");
  assert_int_equal((*store.GetRepository("default", "r.git"))->generation, 1);

  // A write the old primary took after it lost the election (a call that
  // was routed before) is not acknowledged: it missed generation 1.
  praefect::datastore::Write late{1, first, {}, {}, ""};
  assert_int_equal(static_cast<int>(store.RecordWrite(late).code()), static_cast<int>(StatusCode::kFailedPrecondition));

  // Only the new primary holds generation 1; when it fails too, nothing is
  // up to date: reads and writes are UNAVAILABLE, and name the repository.
  SetHealth(f, store, {first, behind});
  for (const char* method : {"/gitaly.RepositoryService/CalculateChecksum", "/gitaly.RepositoryService/WriteRef"}) {
    route = f.Decide(method, Exists("default", "r.git"));
    assert_int_equal(static_cast<int>(route.status().code()), static_cast<int>(StatusCode::kUnavailable));
    expect_that(route.status().message().find("\"r.git\"") != std::string::npos,
                std::string(method) + " names the repository: " + route.status().message());
  }
  expect_that(Primary(store, "r.git").empty(), "no primary is recorded without a valid candidate");
}

// Reads find the repository in the cache (one load, then hits); writes
// read the datastore and drop the entry after their record, so the next
// read sees the new generation.
void CacheServesReadsWritesInvalidate(void**) {
  praefect::datastore::MemoryDatastore store;
  praefect::datastore::RepositoryCache cache;
  Fixture f(false, &store, true, &cache);
  SetHealth(f, store, {"gitaly-1", "gitaly-2", "gitaly-3"});
  gitaly::CreateRepositoryRequest create;
  create.mutable_repository()->set_storage_name("default");
  create.mutable_repository()->set_relative_path("c.git");
  auto route = f.Decide("/gitaly.RepositoryService/CreateRepository", create.SerializeAsString());
  assert_status_ok(route.status());
  route->commit(praefect::Status::Ok(), [](std::optional<praefect::Status>) {});
  const std::string primary = Primary(store, "c.git");
  for (const char* n : {"gitaly-1", "gitaly-2", "gitaly-3"}) assert_status_ok(store.SetGeneration(1, n, 0));
  for (int i = 0; i < 10; ++i) {
    route = f.Decide("/gitaly.RepositoryService/CalculateChecksum", Exists("default", "c.git"));
    assert_status_ok(route.status());
  }
  assert_int_equal(cache.misses(), 1);
  assert_int_equal(cache.hits(), 9);
  route = f.Decide("/gitaly.RepositoryService/WriteRef", Exists("default", "c.git"));
  assert_status_ok(route.status());
  assert_int_equal(cache.misses(), 1);  // the write read the datastore
  route->commit(praefect::Status::Ok(), [](std::optional<praefect::Status>) {});
  // Only the primary holds generation 1 now: every read goes there.
  for (int i = 0; i < 16; ++i) {
    route = f.Decide("/gitaly.RepositoryService/CalculateChecksum", Exists("default", "c.git"));
    assert_status_ok(route.status());
    expect_that(route->upstream == f.NodeNamed(primary).upstream, "reads after the write see its generation");
  }
  assert_int_equal(cache.misses(), 2);
}

// default_replication_factor: a new repository is assigned that many nodes,
// the primary among them, and only those get replication jobs.
void ReplicationFactorAssignsNodes(void**) {
  praefect::datastore::MemoryDatastore store;
  Fixture f(false, &store);
  const_cast<praefect::nodes::VirtualStorage*>(f.nodes->Find("default"))->replication_factor = 2;
  SetHealth(f, store, {"gitaly-1", "gitaly-2", "gitaly-3"});
  gitaly::CreateRepositoryRequest create;
  create.mutable_repository()->set_storage_name("default");
  create.mutable_repository()->set_relative_path("two.git");
  auto route = f.Decide("/gitaly.RepositoryService/CreateRepository", create.SerializeAsString());
  assert_status_ok(route.status());
  route->commit(praefect::Status::Ok(), [](std::optional<praefect::Status>) {});
  auto meta = store.GetRepository("default", "two.git");
  assert_int_equal((*meta)->assigned.size(), 2);
  expect_that((*meta)->IsAssigned((*meta)->primary), "the primary is assigned");
  auto jobs = store.Jobs();
  assert_int_equal(jobs.size(), 1);
  expect_that((*meta)->IsAssigned(jobs[0].job.target_node_storage), "only the assigned secondary gets a job");
}


}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(RepositoryCallGoesToThePrimaryRewritten),
      cmocka_unit_test(CorrelationIdKeptAndTokenlessNodeGetsNoAuthorization),
      cmocka_unit_test(Refusals),
      cmocka_unit_test(Authentication),
      cmocka_unit_test(AuthReplacedLive),
      cmocka_unit_test(AdditionalRepositoryRewritten),
      cmocka_unit_test(StorageScopedCalls),
      cmocka_unit_test(PathsValidatedBeforeRouting),
      cmocka_unit_test(ServerScopedNotProxied),
      cmocka_unit_test(RegisteredRepositories),
      cmocka_unit_test(PerRepositoryPrimariesAndReads),
      cmocka_unit_test(ReplicationFactorAssignsNodes),
      cmocka_unit_test(CacheServesReadsWritesInvalidate),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
