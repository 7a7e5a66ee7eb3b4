// Secrets from systemd credentials and the INI secrets file (inih).
#include "config/secrets.h"

#include <fcntl.h>
#include <ini.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "config/internal.h"

namespace praefect::config {

std::string NodeTokenCredentialName(std::string_view virtual_storage, std::string_view storage) {
  return "node-token-" + std::string(virtual_storage) + "-" + std::string(storage);
}

std::string NodeSecretsSection(std::string_view virtual_storage, std::string_view storage) {
  return "node." + std::string(virtual_storage) + "." + std::string(storage);
}

namespace internal {
namespace {

struct IniValue {
  std::string value;
  int line = 0;
};

// The secrets file as read: section → key → value.
struct IniFile {
  std::string path;
  std::map<std::string, std::map<std::string, IniValue>> sections;
};

// inih's state. The reader hands inih one line at a time and counts lines;
// inih calls the handler for a line before it reads the next one, so the
// handler knows its line. The reader also remembers the raw section name,
// since inih truncates long ones.
struct IniParse {
  std::string_view data;
  size_t pos = 0;
  int line = 0;
  std::string section;
  IniFile* file = nullptr;
  Diagnostics* diag = nullptr;
};

char* IniReadLine(char* str, int num, void* stream) {
  auto* p = static_cast<IniParse*>(stream);
  if (p->pos >= p->data.size()) return nullptr;
  size_t end = p->data.find('\n', p->pos);
  size_t next = end == std::string_view::npos ? p->data.size() : end + 1;
  std::string_view line = p->data.substr(p->pos, next - p->pos);
  p->pos = next;
  ++p->line;
  if (line.size() >= static_cast<size_t>(num)) {
    p->diag->Add(Problem{{},
                         "expected lines of at most " + std::to_string(num - 2) + " characters, found " +
                             std::to_string(line.size()) + "; shorten this line",
                         p->file->path,
                         p->line,
                         0,
                         Severity::kError});
    line = "\n";
  }
  std::string_view trimmed = line.substr(
      line.find_first_not_of(" \t") == std::string_view::npos ? line.size() : line.find_first_not_of(" \t"));
  if (!trimmed.empty() && trimmed.front() == '[') {
    size_t close = trimmed.find(']');
    if (close != std::string_view::npos) p->section = std::string(trimmed.substr(1, close - 1));
  }
  std::memcpy(str, line.data(), line.size());
  str[line.size()] = '\0';
  return str;
}

int IniHandler(void* user, const char* /*section*/, const char* name, const char* value) {
  auto* p = static_cast<IniParse*>(user);
  IniValue& slot = p->file->sections[p->section][name];
  if (slot.line != 0) {
    p->diag->Add(
        Problem{{p->section, name},
                "duplicate key: already set at line " + std::to_string(slot.line) + "; the last one is used",
                p->file->path,
                p->line,
                0,
                Severity::kWarning});
  }
  slot.value = value;
  slot.line = p->line;
  return 1;
}

// Reads the secrets file; false when it could not be used at all.
bool ReadSecretsFile(const Config& config, Diagnostics* diag, IniFile* file) {
  const std::string& path = config.secrets_file;
  file->path = path;
  KeyPath key = {"secrets_file"};
  if (path.front() != '/') {
    diag->Error(key, diag->Where(key), "expected an absolute path, found \"" + path + "\"");
    return false;
  }
  StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    diag->Error(key, diag->Where(key),
                "cannot read the secrets file \"" + path + "\": " + text.status().message() +
                    " (expected a readable INI file)");
    return false;
  }
  struct stat st;
  // Quiet: only the owner may read it, or root owns it and only its group
  // (the service's, as the packages install it: 0640 root:praefect) may read.
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0 &&
      !(st.st_uid == 0 && st.st_gid != 0 && (st.st_mode & 077) == 040)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    diag->Add(
        Problem{{},
                std::string("expected a file only its owner can read (mode 0600 or 0400) or a root-owned file only "
                            "its group can also read (0640 root:praefect), found mode ") +
                    mode + "; run: chmod 600 " + path,
                path,
                0,
                0,
                Severity::kWarning});
  }
  IniParse parse{*text, 0, 0, "", file, diag};
  int bad_line = ini_parse_stream(IniReadLine, &parse, IniHandler, &parse);
  if (bad_line > 0) {
    diag->Add(Problem{{},
                      "expected `[section]`, `key = value` or a `#`/`;` comment, found something else (not "
                      "shown: it may hold a secret)",
                      path,
                      bad_line,
                      0,
                      Severity::kError});
  } else if (bad_line < 0) {
    diag->Add(Problem{{}, "could not parse the secrets file (out of memory?)", path, 0, 0, Severity::kError});
  }
  return true;
}

// The value of [section] key in the secrets file, or nullptr.
const IniValue* FromFile(IniFile* file, const std::string& section, const std::string& key) {
  auto s = file->sections.find(section);
  if (s == file->sections.end()) return nullptr;
  auto k = s->second.find(key);
  return k == s->second.end() ? nullptr : &k->second;
}

bool CredentialExists(const Environment& env, const std::string& name) {
  if (!env.credentials_directory || name.find('/') != std::string::npos) return false;
  struct stat st;
  return ::stat((*env.credentials_directory + "/" + name).c_str(), &st) == 0;
}

// The content of credential `name`, nullopt when absent (or on error, reported).
std::optional<std::string> FromCredential(const Environment& env, const std::string& name, const KeyPath& key,
                                          Diagnostics* diag) {
  if (!env.credentials_directory || name.find('/') != std::string::npos) return std::nullopt;
  std::string path = *env.credentials_directory + "/" + name;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) {
    diag->Add(Problem{key,
                      "cannot read the credential: " + text.status().message() +
                          " (expected a file readable by praefect; check LoadCredential= in the unit)",
                      path, 0, 0, Severity::kError});
    return std::nullopt;
  }
  std::string value = std::move(*text);
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) {
    diag->Add(Problem{key, "expected a secret, found an empty credential", path, 0, 0, Severity::kError});
    return std::nullopt;
  }
  return value;
}

// Applies one secret: `credentials` (first that exists wins) > `file_entries` > inline.
void Resolve(const Environment& env, std::initializer_list<std::string> credentials, IniFile* file,
             std::initializer_list<std::pair<std::string, std::string>> file_entries, const KeyPath& key,
             Diagnostics* diag, std::string* secret) {
  for (const std::string& name : credentials) {
    if (auto value = FromCredential(env, name, key, diag)) {
      *secret = std::move(*value);
      return;
    }
  }
  if (file == nullptr) return;
  for (const auto& [section, name] : file_entries) {
    if (const IniValue* v = FromFile(file, section, name)) {
      if (v->value.empty()) {
        diag->Add(Problem{{section, name},
                          "expected a secret, found an empty value",
                          file->path,
                          v->line,
                          0,
                          Severity::kError});
      }
      *secret = v->value;
      return;
    }
  }
}

// The TLS key from its credential, when there is one: it replaces the
// configured key_path or key, so that the key may stay readable by root only
// (/etc/credstore) while the certificate is an ordinary file.
void ResolveTlsKey(const Environment& env, Tls* tls, Diagnostics* diag) {
  const std::string name(kTlsKeyCredential);
  std::optional<std::string> key = FromCredential(env, name, {"tls", "key"}, diag);
  if (!key) return;
  tls->key = std::move(*key) + "\n";
  tls->key_path.clear();
  tls->key_credential = *env.credentials_directory + "/" + name;
}

// Warns about every entry of the file that no secret of `config` reads.
void ReportUnknown(const IniFile& file, const Config& config, Diagnostics* diag) {
  std::set<std::pair<std::string, std::string>> known = {{"auth", "token"},
                                                         {"database", "password"},
                                                         {"database.session_pooled", "password"},
                                                         {"node", "token"}};
  for (const VirtualStorage& vs : config.virtual_storages) {
    for (const Node& node : vs.nodes) known.emplace(NodeSecretsSection(vs.name, node.storage), "token");
  }
  for (const auto& [section, keys] : file.sections) {
    for (const auto& [name, value] : keys) {
      if (known.count({section, name}) != 0) continue;
      bool is_node = section.rfind("node.", 0) == 0;
      diag->Add(Problem{{section, name},
                        is_node ? "unused: no configured node matches section [" + section +
                                      "] (expected [node.<virtual storage>.<storage>] with a token key)"
                                : "unknown key: expected [auth] token, [database] password, "
                                  "[database.session_pooled] password, [node] token or "
                                  "[node.<virtual storage>.<storage>] token",
                        file.path,
                        value.line,
                        0,
                        Severity::kWarning});
    }
  }
}

// `env` without its credentials directory when that directory cannot be
// opened and the caller asked to go on without it (the warning says so).
Environment UsableCredentials(const Environment& env, Diagnostics* diag) {
  if (!env.credentials_directory || !env.skip_unreadable_credentials) return env;
  const std::string& dir = *env.credentials_directory;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return env;
  }
  diag->Add(Problem{{},
                    std::string("cannot open the credentials directory ($CREDENTIALS_DIRECTORY): ") +
                        std::strerror(errno) +
                        "; checked the configuration without the systemd credentials (systemd does not give "
                        "them to ExecReload= commands). The running praefect reads its own credentials when "
                        "it reloads; they change only when the service restarts",
                    dir,
                    0,
                    0,
                    Severity::kWarning});
  return Environment{std::nullopt, env.skip_unreadable_credentials};
}

}  // namespace

void ResolveSecrets(const Environment& process_env, Decoded* decoded, Diagnostics* diag) {
  const Environment env = UsableCredentials(process_env, diag);
  Config& c = decoded->config;
  IniFile file;
  IniFile* ini = nullptr;
  if (!c.secrets_file.empty() && ReadSecretsFile(c, diag, &file)) ini = &file;

  Resolve(env, {std::string(kAuthTokenCredential)}, ini, {{"auth", "token"}}, {"auth", "token"}, diag,
          &c.auth.token);
  Resolve(env, {std::string(kDatabasePasswordCredential)}, ini, {{"database", "password"}},
          {"database", "password"}, diag, &c.database.password);
  Resolve(env, {std::string(kSessionPooledPasswordCredential)}, ini,
          {{"database.session_pooled", "password"}}, {"database", "session_pooled", "password"}, diag,
          &c.database.session_pooled.password);
  ResolveTlsKey(env, &c.tls, diag);

  // Names are built by joining; two different nodes could map to one name
  // ("a-b" + "c" and "a" + "b-c"). That only matters when such a secret exists.
  std::map<std::string, std::pair<const Node*, KeyPath>> owner;  // credential name → first node
  for (size_t i = 0; i < c.virtual_storages.size(); ++i) {
    VirtualStorage& vs = c.virtual_storages[i];
    for (size_t j = 0; j < vs.nodes.size(); ++j) {
      Node& node = vs.nodes[j];
      KeyPath key = Join(decoded->node_keys[i][j], "token");
      std::string name = NodeTokenCredentialName(vs.name, node.storage);
      std::string section = NodeSecretsSection(vs.name, node.storage);
      auto [it, fresh] = owner.emplace(name, std::make_pair(&node, key));
      bool same_storage =
          !fresh && it->second.first->storage == node.storage;  // a duplicate, reported elsewhere
      if (!fresh && !same_storage && (CredentialExists(env, name) || (ini && ini->sections.count(section)))) {
        diag->Error(key, diag->Nearest(decoded->node_keys[i][j]),
                    "ambiguous secrets: this node and " + KeyPathToString(it->second.second) +
                        " both map to credential \"" + name + "\" and secrets section [" + section +
                        "]; rename a storage or a virtual storage");
        continue;
      }
      Resolve(env, {name, std::string(kSharedNodeTokenCredential)}, ini,
              {{section, "token"}, {"node", "token"}}, key, diag, &node.token);
    }
  }
  if (ini != nullptr) ReportUnknown(*ini, c, diag);
}

}  // namespace internal
}  // namespace praefect::config
