#pragma once

#include <string>
#include <string_view>

// Where praefect's secrets may come from besides config.toml (applied by the
// loader, config/load.h). Precedence, highest first:
//
//   1. a systemd credential: the file $CREDENTIALS_DIRECTORY/<name>
//      (LoadCredential=/SetCredentialEncrypted= in the unit), trailing
//      newlines stripped;
//   2. the INI file named by the top-level `secrets_file` key;
//   3. the value written inline in config.toml.
//
// For node tokens, within each source the node's own entry beats the entry
// shared by every node. A credential that does not exist is simply not
// used; one that exists but cannot be read, a secrets file that is missing
// or malformed, and an empty secret are errors. A secrets file readable or
// writable by group or others is a warning, except a root-owned file that
// only its (non-root) group may read: 0640 root:praefect, as packaged.
//
//   secret                            credential                    secrets_file
//   auth.token                        auth-token                    [auth] token
//   database.password                 database-password             [database] password
//   database.session_pooled.password  database-session-pooled-password
//                                                                   [database.session_pooled] password
//   virtual_storage.node.token        node-token-<vs>-<storage>     [node.<vs>.<storage>] token
//     (every node)                    node-token                    [node] token
//   tls.key (replaces key_path)       tls-key                       -
//
// The TLS key is a PEM private key, not a token: only a credential replaces
// the configured key (tls.key_path or tls.key), and Tls::key_credential
// names the file it came from, for messages.
namespace praefect::config {

inline constexpr std::string_view kAuthTokenCredential = "auth-token";
inline constexpr std::string_view kDatabasePasswordCredential = "database-password";
inline constexpr std::string_view kSessionPooledPasswordCredential = "database-session-pooled-password";
inline constexpr std::string_view kSharedNodeTokenCredential = "node-token";
inline constexpr std::string_view kTlsKeyCredential = "tls-key";

// "node-token-<virtual_storage>-<storage>".
std::string NodeTokenCredentialName(std::string_view virtual_storage, std::string_view storage);

// "node.<virtual_storage>.<storage>", the secrets-file section of one node.
std::string NodeSecretsSection(std::string_view virtual_storage, std::string_view storage);

}  // namespace praefect::config
