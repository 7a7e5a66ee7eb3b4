// Streaming: GetBlob of a large blob with bounded node memory, GetBlob's
// limit and missing-object answers, and GetSnapshot restoring a repository.
#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "blob.grpc.pb.h"
#include "integration_test.h"
#include "repository-service.grpc.pb.h"
#include "scratch_repo.h"
#include "test_support.h"

using namespace praefect::storagenode::testing;  // NOLINT: test file

namespace {

constexpr size_t kBlobSize = 72u << 20;  // 72 MiB, above the 64 MiB bound checked

// Deterministic, poorly compressible bytes.
std::string BlobBytes() {
  std::string data(kBlobSize, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < data.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (size_t j = 0; j < 8 && i + j < data.size(); ++j) data[i + j] = static_cast<char>(x >> (8 * j));
  }
  return data;
}

std::string Hex(const unsigned char* d, size_t n) {
  std::string out;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", d[i]);
    out += b;
  }
  return out;
}

}  // namespace

void GetBlobStreamsLargeBlobWithBoundedMemory(void**) {
  std::string path = CreateRepo("blob.git");
  std::string oid;
  std::string want_sha;
  {
    std::string data = BlobBytes();
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
    want_sha = Hex(d, sizeof d);
    oid = Git({"--git-dir=" + path, "hash-object", "-w", "--stdin"}, data).substr(0, 40);
  }
  long rss_before = Node().PeakRssKiB();

  auto stub = gitaly::BlobService::NewStub(Node().Channel());
  gitaly::GetBlobRequest req;
  *req.mutable_repository() = Repo("blob.git");
  req.set_oid(oid);
  req.set_limit(-1);
  auto ctx = Ctx("", std::chrono::seconds(120));
  auto start = std::chrono::steady_clock::now();
  auto reader = stub->GetBlob(ctx.get(), req);
  gitaly::GetBlobResponse msg;
  EVP_MD_CTX* sha = EVP_MD_CTX_new();
  EVP_DigestInit_ex(sha, EVP_sha1(), nullptr);
  size_t total = 0, messages = 0, biggest = 0;
  while (reader->Read(&msg)) {
    if (messages == 0) {
      assert_int_equal(msg.size(), kBlobSize);
      assert_string_equal(msg.oid().c_str(), oid.c_str());
    }
    ++messages;
    biggest = std::max(biggest, msg.data().size());
    EVP_DigestUpdate(sha, msg.data().data(), msg.data().size());
    total += msg.data().size();
  }
  grpc::Status st = reader->Finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  expect_that(st.ok(), "GetBlob: " + st.error_message());
  unsigned char d[SHA_DIGEST_LENGTH];
  EVP_DigestFinal_ex(sha, d, nullptr);
  EVP_MD_CTX_free(sha);
  assert_int_equal(total, kBlobSize);
  assert_string_equal(Hex(d, sizeof d).c_str(), want_sha.c_str());
  assert_true(biggest <= 128 * 1024);
  long rss_after = Node().PeakRssKiB();
  std::fprintf(stderr, "GetBlob: %zu MiB in %zu messages, %.2f s (%.0f MiB/s); node VmHWM %ld KiB before, %ld KiB after\n",
               total >> 20, messages, seconds, static_cast<double>(total >> 20) / seconds, rss_before, rss_after);
  // The stream may not grow the node by anything near the blob's size.
  expect_that(rss_before > 0 && rss_after - rss_before < 32 * 1024,
              "node peak RSS growth under 32 MiB for a 72 MiB blob, got " +
                  std::to_string(rss_after - rss_before) + " KiB");
#if !defined(__SANITIZE_ADDRESS__)
  // Sanitizer runtimes have their own resident overhead; the absolute bound
  // holds for the plain build.
  expect_that(rss_after < 64 * 1024, "node peak RSS under 64 MiB, got " + std::to_string(rss_after) + " KiB");
#endif
}

void GetBlobLimitAndMissing(void**) {
  std::string path = CreateRepo("small-blob.git");
  std::string oid = Git({"--git-dir=" + path, "hash-object", "-w", "--stdin"}, "hello, blob\n").substr(0, 40);
  auto stub = gitaly::BlobService::NewStub(Node().Channel());
  auto fetch = [&](const std::string& want_oid, int64_t limit, std::vector<gitaly::GetBlobResponse>* out) {
    gitaly::GetBlobRequest req;
    *req.mutable_repository() = Repo("small-blob.git");
    req.set_oid(want_oid);
    req.set_limit(limit);
    auto ctx = Ctx();
    auto reader = stub->GetBlob(ctx.get(), req);
    gitaly::GetBlobResponse msg;
    while (reader->Read(&msg)) out->push_back(msg);
    return reader->Finish();
  };
  std::vector<gitaly::GetBlobResponse> msgs;
  assert_true(fetch(oid, 5, &msgs).ok());
  assert_int_equal(msgs.size(), 1);
  assert_int_equal(msgs[0].size(), 12);
  assert_string_equal(msgs[0].data().c_str(), "hello");
  assert_string_equal(msgs[0].oid().c_str(), oid.c_str());
  msgs.clear();
  assert_true(fetch(oid, 0, &msgs).ok());
  assert_int_equal(msgs.size(), 1);
  assert_int_equal(msgs[0].size(), 12);
  assert_int_equal(msgs[0].data().size(), 0);
  // A missing object: one empty message, as Gitaly.
  msgs.clear();
  assert_true(fetch(std::string(40, 'e'), -1, &msgs).ok());
  assert_int_equal(msgs.size(), 1);
  assert_string_equal(msgs[0].oid().c_str(), "");
  assert_int_equal(msgs[0].size(), 0);
  msgs.clear();
  assert_int_equal(fetch("", -1, &msgs).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

void GetSnapshotRoundTrips(void**) {
  std::string path = CreateRepo("snapshot.git");
  PushCommits(path, Node().root() + "/work-snapshot", "main", 3, true);
  auto stub = gitaly::RepositoryService::NewStub(Node().Channel());
  gitaly::GetSnapshotRequest req;
  *req.mutable_repository() = Repo("snapshot.git");
  auto ctx = Ctx();
  auto reader = stub->GetSnapshot(ctx.get(), req);
  std::string tar_path = Node().root() + "/snapshot.tar";
  {
    std::ofstream tar(tar_path, std::ios::binary);
    gitaly::GetSnapshotResponse msg;
    while (reader->Read(&msg)) tar << msg.data();
  }
  grpc::Status st = reader->Finish();
  expect_that(st.ok(), "GetSnapshot: " + st.error_message());
  // Unpack into an empty directory: a complete repository, same refs, fsck
  // clean.
  std::string restored = Node().root() + "/restored.git";
  Run({"mkdir", restored});
  Run({"tar", "-x", "-f", tar_path, "-C", restored});
  Run({"mkdir", "-p", restored + "/refs/heads", restored + "/refs/tags"});
  assert_string_equal(Git({"--git-dir=" + restored, "show-ref"}).c_str(),
                      Git({"--git-dir=" + path, "show-ref"}).c_str());
  Git({"--git-dir=" + restored, "fsck", "--no-progress"});
}
