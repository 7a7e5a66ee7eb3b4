#pragma once

// What the node and its hook program (praefect-storage-node-hook, see
// hook_main.cc) agree on. The node runs every ref-updating git command of a
// transactional call with `-c core.hooksPath=<dir>`, a directory whose
// entries (pre-receive, update, post-receive, reference-transaction) are
// links to the hook program, and with the environment below. The hook
// program connects to the node's hook socket for each vote:
//
//   request:  "vote <token> <phase> <length>\n" and <length> bytes
//             (the node votes SHA-1 of those bytes), or
//             "stop <token>\n"
//   answer:   one line: "commit", "abort", "stop", "ok" (to stop), or
//             "error <message>"
//
// <phase> is prepared, committed or synchronized. The token names the call
// (and so the transaction and the backchannel) in the node; it is random
// and lives as long as the call.
//
// Header-only and free of grpc++: the hook program includes it too.
#include <string_view>

namespace praefect::storagenode::hook {

// The node's hook socket (a unix socket in the node's private directory).
inline constexpr std::string_view kSocketEnv = "PRAEFECT_NODE_HOOK_SOCKET";
// The call's token.
inline constexpr std::string_view kTokenEnv = "PRAEFECT_NODE_HOOK_TOKEN";
// "1" where the transaction says primary: only there repository hooks run.
inline constexpr std::string_view kPrimaryEnv = "PRAEFECT_NODE_HOOK_PRIMARY";
// The repository's directory, where its custom_hooks/ (Gitaly's layout) are.
inline constexpr std::string_view kRepositoryEnv = "PRAEFECT_NODE_HOOK_REPOSITORY";

inline constexpr std::string_view kVote = "vote";
inline constexpr std::string_view kStop = "stop";

inline constexpr std::string_view kPrepared = "prepared";
inline constexpr std::string_view kCommitted = "committed";
inline constexpr std::string_view kSynchronized = "synchronized";

inline constexpr std::string_view kAnswerCommit = "commit";
inline constexpr std::string_view kAnswerAbort = "abort";
inline constexpr std::string_view kAnswerStop = "stop";
inline constexpr std::string_view kAnswerOk = "ok";
inline constexpr std::string_view kAnswerError = "error";

// The hooks the directory provides.
inline constexpr std::string_view kHookNames[] = {"pre-receive", "update", "post-receive", "reference-transaction"};

// The largest vote payload the node takes (a reference-transaction batch of
// some hundred thousand refs).
inline constexpr size_t kMaxPayload = 64u << 20;

}  // namespace praefect::storagenode::hook
