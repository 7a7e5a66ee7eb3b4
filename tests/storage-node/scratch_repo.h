#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace praefect::storagenode::testing {

// Test-side git, run directly (not through the node): commits in a scratch
// work tree pushed into a bare repository on the node's disk.

// Runs `git <args>` with a fixed identity; aborts the test on failure unless
// `allow_fail`. Returns stdout.
std::string Git(const std::vector<std::string>& args, const std::string& input = "", bool allow_fail = false,
                int* exit_code = nullptr);

// Runs a program (no shell); aborts the test unless it exits 0.
void Run(const std::vector<std::string>& argv);

// Clones `bare` into `work`, makes `commits` commits on `branch`, and pushes
// the branch (and a tag per commit when `tags`) back. Returns the tip oid.
std::string PushCommits(const std::string& bare, const std::string& work, const std::string& branch,
                        int commits, bool tags);

// The Gitaly checksum computed independently of the node: XOR of SHA-1 over
// "<oid> <ref>" for HEAD and every ref under refs/heads and refs/tags as
// `git for-each-ref` lists them, printed as Go's big.Int bytes.
std::string ReferenceChecksum(const std::string& bare);

// `data` as one pkt-line (4 hex digits of length, then the bytes).
std::string PktLine(const std::string& data);

// `size` deterministic, poorly compressible bytes (xorshift from `seed`), so
// that packs span several messages.
std::string NoiseBytes(size_t size, uint64_t seed);

}  // namespace praefect::storagenode::testing
