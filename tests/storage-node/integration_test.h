#pragma once

// Shared by the integration test files: the node under test and request
// helpers.
#include <string>

#include "node_harness.h"
#include "shared.pb.h"

namespace praefect::storagenode::testing {

// The node every test of the group talks to (started by the group setup).
NodeProcess& Node();

inline gitaly::Repository Repo(const std::string& rel, const std::string& storage = "default") {
  gitaly::Repository r;
  r.set_storage_name(storage);
  r.set_relative_path(rel);
  return r;
}

// Creates `rel` through the node's CreateRepository, asserting success;
// returns its path on disk.
std::string CreateRepo(const std::string& rel);

}  // namespace praefect::storagenode::testing

// cmocka test functions defined in integration_blob_test.cc.
void GetBlobStreamsLargeBlobWithBoundedMemory(void**);
void GetBlobLimitAndMissing(void**);
void GetSnapshotRoundTrips(void**);
void CrashLeavesNoTornRepository(void**);

// Defined in integration_replicate_test.cc.
void ReplicateRepositoryMakesEqualReplicas(void**);
void ReplicateRepositoryRefusals(void**);
void CreateRepositoryFromSnapshotOverHttp(void**);
// Defined in integration_smarthttp_test.cc.
void SmartHttpInfoRefsAdvertisesRefs(void**);
void SmartHttpFetchesPack(void**);
void SmartHttpPushUpdatesRef(void**);
void SmartHttpRefusesBadToken(void**);
