// Secrets from systemd credentials and the secrets file: precedence
// credential > secrets file > inline, and every way they can go wrong.
#include "config/secrets.h"

#include <sys/stat.h>

#include <filesystem>

#include "config_testing.h"

namespace praefect::config {
namespace {

using testing::Dump;
using testing::HasProblem;
using testing::WriteText;

struct Fixture {
  std::string dir = testing::MakeTempDir();
  std::string creds = dir + "/credentials";
  std::string secrets = dir + "/secrets.ini";

  Fixture() { std::filesystem::create_directory(creds); }
  ~Fixture() { std::filesystem::remove_all(dir); }

  Environment Env() const { return Environment{creds}; }
  void Credential(const std::string& name, const std::string& value) const {
    WriteText(creds + "/" + name, value);
  }
  void Secrets(const std::string& text, mode_t mode = 0600) const {
    WriteText(secrets, text);
    ::chmod(secrets.c_str(), mode);
  }
  // A config with inline secrets everywhere, and the secrets file named when `with_file`.
  std::string Toml(bool with_file) const {
    return "listen_addr = ':2305'\n" +
           (with_file ? "secrets_file = '" + secrets + "'\n" : std::string("# no file\n")) +
           "[auth]\ntoken = 'inline-auth'\n"
           "[database]\npassword = 'inline-db'\n[database.session_pooled]\npassword = 'inline-sp'\n"
           "[[virtual_storage]]\nname = 'default'\n"
           "[[virtual_storage.node]]\nstorage = 'gitaly-1'\naddress = 'tcp://g1:8075'\ntoken = 'inline-1'\n"
           "[[virtual_storage.node]]\nstorage = 'gitaly-2'\naddress = 'tcp://g2:8075'\ntoken = 'inline-2'\n"
           "[[virtual_storage.node]]\nstorage = 'gitaly-3'\naddress = 'tcp://g3:8075'\ntoken = 'inline-3'\n";
  }
  LoadResult Load(bool with_file = true) const { return LoadString(Toml(with_file), "praefect.toml", Env()); }
};

void TestNames(void**) {
  check_that(NodeTokenCredentialName("default", "gitaly-1") == "node-token-default-gitaly-1",
             "credential name");
  check_that(NodeSecretsSection("default", "gitaly-1") == "node.default.gitaly-1", "section name");
}

void TestInlineWhenNothingElse(void**) {
  Fixture f;
  LoadResult r = LoadString(f.Toml(false), "praefect.toml", Environment{});
  check_that(r.ok() && r.warning_count() == 0, "valid:\n" + Dump(r));
  check_that(r.config->auth.token == "inline-auth" && r.config->database.password == "inline-db" &&
                 r.config->virtual_storages[0].nodes[0].token == "inline-1",
             "inline values kept");
}

void TestPrecedence(void**) {
  Fixture f;
  f.Secrets(
      "; praefect secrets\n[auth]\ntoken = file-auth\n[database]\npassword = file-db\n"
      "[database.session_pooled]\npassword = file-sp\n[node]\ntoken = file-shared\n"
      "[node.default.gitaly-1]\ntoken = file-1\n[node.default.gitaly-2]\ntoken = file-2\n");
  f.Credential("auth-token", "cred-auth\n");
  f.Credential("database-session-pooled-password", "cred-sp\r\n");
  f.Credential("node-token-default-gitaly-2", "cred-2");
  LoadResult r = f.Load();
  check_that(r.ok() && r.warning_count() == 0, "valid:\n" + Dump(r));
  const Config& c = *r.config;
  check_that(c.auth.token == "cred-auth",
             "credential beats file and inline; trailing newline stripped: " + c.auth.token);
  check_that(c.database.password == "file-db", "file beats inline: " + c.database.password);
  check_that(c.database.session_pooled.password == "cred-sp",
             "CRLF stripped: " + c.database.session_pooled.password);
  check_that(c.virtual_storages[0].nodes[0].token == "file-1",
             "the node's own file entry: " + c.virtual_storages[0].nodes[0].token);
  check_that(c.virtual_storages[0].nodes[1].token == "cred-2",
             "the node's credential: " + c.virtual_storages[0].nodes[1].token);
  check_that(c.virtual_storages[0].nodes[2].token == "file-shared",
             "the shared [node] token: " + c.virtual_storages[0].nodes[2].token);

  f.Credential("node-token", "cred-shared");
  LoadResult shared = f.Load();
  const auto& nodes = shared.config->virtual_storages[0].nodes;
  check_that(nodes[0].token == "cred-shared" && nodes[1].token == "cred-2" && nodes[2].token == "cred-shared",
             "the shared credential beats every file entry, the node's own credential beats it");
}

void TestMissingAndRelativeSecretsFile(void**) {
  Fixture f;
  LoadResult missing = f.Load();
  check_that(HasProblem(missing, Severity::kError, "secrets_file", 2, 1,
                        "cannot read the secrets file \"" + f.secrets + "\": No such file or directory"),
             "a missing secrets file names its path, at the secrets_file line:\n" + Dump(missing));
  LoadResult relative =
      LoadString("listen_addr = ':1'\nsecrets_file = 'secrets.ini'\n", "praefect.toml", f.Env());
  check_that(HasProblem(relative, Severity::kError, "secrets_file", 2, 1,
                        "expected an absolute path, found \"secrets.ini\""),
             "a relative path:\n" + Dump(relative));
}

void TestMalformedSecretsFile(void**) {
  Fixture f;
  f.Secrets("[auth]\ntoken = ok\nthis line has no equals sign\n[database]\npassword = p\n");
  LoadResult r = f.Load();
  bool found = false;
  for (const Problem& p : r.problems) {
    found |= p.severity == Severity::kError && p.file == f.secrets && p.line == 3 &&
             p.message.find("expected `[section]`, `key = value`") != std::string::npos;
  }
  check_that(found, "the bad line of the secrets file, with its path:\n" + Dump(r));
  check_that(r.error_count() == 1, "nothing else:\n" + Dump(r));

  f.Secrets("[auth]\ntoken = " + std::string(300, 'x') + "\n");
  LoadResult long_line = f.Load();
  check_that(!long_line.ok() && long_line.problems[0].file == f.secrets && long_line.problems[0].line == 2 &&
                 long_line.problems[0].message.find("expected lines of at most 198 characters, found 309") !=
                     std::string::npos,
             "a line too long for inih:\n" + Dump(long_line));

  f.Secrets("[auth]\ntoken =\n");
  LoadResult empty = f.Load();
  check_that(!empty.ok() && HasProblem(empty, Severity::kError, "auth.token", 2, 0, "found an empty value"),
             "an empty secret:\n" + Dump(empty));
}

void TestUnknownEntriesAndPermissions(void**) {
  Fixture f;
  f.Secrets(
      "[auth]\ntokn = typo\n[node.default.gitaly-9]\ntoken = t\n[node.default.gitaly-1]\ntoken = a\ntoken = "
      "b\n",
      0644);
  LoadResult r = f.Load();
  check_that(r.ok(), "warnings only:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "auth.tokn", 2, 0, "unknown key"), "unknown key:\n" + Dump(r));
  check_that(
      HasProblem(r, Severity::kWarning, "node.default.gitaly-9.token", 4, 0, "no configured node matches"),
      "a node section for no node:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "node.default.gitaly-1.token", 7, 0, "already set at line 6"),
             "a duplicate key:\n" + Dump(r));
  check_that(r.config->virtual_storages[0].nodes[0].token == "b", "the last duplicate wins");
  check_that(HasProblem(r, Severity::kWarning, "", 0, 0, "found mode 0644; run: chmod 600 " + f.secrets),
             "a group/world readable secrets file:\n" + Dump(r));

  f.Secrets("[auth]\ntoken = t\n", 0600);
  LoadResult tight = f.Load();
  check_that(tight.ok() && tight.warning_count() == 0, "mode 0600 is quiet:\n" + Dump(tight));
  f.Secrets("[auth]\ntoken = t\n", 0640);
  check_that(f.Load().warning_count() == 1, "group-readable (mode & 077) warns too");
  // As the packages install it: root-owned, readable by the service's group.
  if (::geteuid() == 0 && ::chown(f.secrets.c_str(), 0, 65534) == 0) {
    check_that(f.Load().warning_count() == 0, "0640 root:<group> is quiet");
    ::chmod(f.secrets.c_str(), 0660);
    check_that(f.Load().warning_count() == 1, "0660 root:<group> warns: the group may write");
    ::chown(f.secrets.c_str(), 0, 0);
    ::chmod(f.secrets.c_str(), 0640);
    check_that(f.Load().warning_count() == 1, "0640 root:root warns");
  }
}

void TestLongSectionNames(void**) {
  // inih truncates section names at 50 characters; praefect reads them whole.
  Fixture f;
  std::string vs(40, 'v');
  std::string toml =
      "listen_addr = ':1'\nsecrets_file = '" + f.secrets + "'\n[[virtual_storage]]\nname = '" + vs +
      "'\n[[virtual_storage.node]]\nstorage = 'a-rather-long-storage-name'\naddress = 'tcp://h:1'\n";
  f.Secrets("[node." + vs + ".a-rather-long-storage-name]\ntoken = long\n");
  LoadResult r = LoadString(toml, "praefect.toml", f.Env());
  check_that(r.ok() && r.warning_count() == 0 && r.config->virtual_storages[0].nodes[0].token == "long",
             "a 73-character section matches:\n" + Dump(r));
}

void TestBadCredentials(void**) {
  Fixture f;
  f.Credential("database-password", "\n");
  std::filesystem::create_directory(f.creds + "/auth-token");
  LoadResult r = f.Load(false);
  check_that(HasProblem(r, Severity::kError, "database.password", 0, 0, "found an empty credential"),
             "an empty credential:\n" + Dump(r));
  check_that(
      HasProblem(r, Severity::kError, "auth.token", 0, 0, "cannot read the credential: it is a directory"),
      "an unreadable credential:\n" + Dump(r));
  for (const Problem& p : r.problems) {
    check_that(p.file.rfind(f.creds + "/", 0) == 0,
               "credential problems name the credential's path: " + p.file);
  }
}

// The TLS key as credential tls-key replaces [tls] key_path (the packaged
// layout: certificate in /etc/praefect/tls, key in /etc/credstore); without
// the credential, key_path stays.
void TestTlsKeyCredential(void**) {
  Fixture f;
  const std::string toml =
      "listen_addr = ':2305'\ntls_listen_addr = ':3305'\n"
      "[tls]\ncertificate_path = '/etc/praefect/tls/cert.pem'\nkey_path = '/etc/praefect/tls/key.pem'\n"
      "[[virtual_storage]]\nname = 'default'\n"
      "[[virtual_storage.node]]\nstorage = 'gitaly-1'\naddress = 'tcp://g1:8075'\n";
  LoadResult without = LoadString(toml, "praefect.toml", f.Env());
  check_that(without.ok() && without.config->tls.key_path == "/etc/praefect/tls/key.pem" &&
                 without.config->tls.key.empty() && without.config->tls.key_credential.empty(),
             "no credential: key_path kept:\n" + Dump(without));

  const std::string pem = "-----BEGIN PRIVATE KEY-----\nMEE=\n-----END PRIVATE KEY-----";
  f.Credential("tls-key", pem + "\n\n");
  LoadResult with = LoadString(toml, "praefect.toml", f.Env());
  check_that(with.ok() && with.warning_count() == 0, "valid:\n" + Dump(with));
  const Tls& tls = with.config->tls;
  check_that(tls.key == pem + "\n" && tls.key_path.empty() && tls.key_credential == f.creds + "/tls-key",
             "the credential replaces key_path and is named: key_path=\"" + tls.key_path + "\" key_credential=\"" +
                 tls.key_credential + "\"");

  // Inline [tls] key: replaced the same way, no "only one of" error.
  std::string inline_toml = toml;
  inline_toml.replace(inline_toml.find("key_path = '/etc/praefect/tls/key.pem'"),
                      std::string("key_path = '/etc/praefect/tls/key.pem'").size(), "key = 'inline'");
  LoadResult replaced = LoadString(inline_toml, "praefect.toml", f.Env());
  check_that(replaced.ok() && replaced.config->tls.key == pem + "\n", "replaces tls.key:\n" + Dump(replaced));

  // A key with no certificate says where the key came from.
  LoadResult lone = LoadString("listen_addr = ':2305'\n", "praefect.toml", f.Env());
  check_that(HasProblem(lone, Severity::kError, "tls.certificate_path", 0, 0,
                        "a TLS key (the systemd credential \"" + f.creds + "/tls-key\") is given but no certificate"),
             "a lone credential:\n" + Dump(lone));

  f.Credential("tls-key", "\n");
  LoadResult empty = LoadString(toml, "praefect.toml", f.Env());
  check_that(HasProblem(empty, Severity::kError, "tls.key", 0, 0, "found an empty credential"),
             "an empty credential:\n" + Dump(empty));
}

// systemd 252 sets $CREDENTIALS_DIRECTORY for ExecReload= commands but hides
// /run/credentials from them. Here the "directory" is a regular file, which
// no open(O_DIRECTORY) accepts, even root's.
void TestUnopenableCredentialsDirectory(void**) {
  Fixture f;
  f.Secrets("[auth]\ntoken = file-auth\n[node]\ntoken = file-node\n");
  std::string not_a_dir = f.dir + "/not-a-directory";
  WriteText(not_a_dir, "");

  LoadResult strict = LoadString(f.Toml(true), "praefect.toml", Environment{not_a_dir});
  check_that(!strict.ok() && HasProblem(strict, Severity::kError, "auth.token", 0, 0, "cannot read the credential"),
             "by default, an unreadable credential is an error:\n" + Dump(strict));

  Environment env{not_a_dir};
  env.skip_unreadable_credentials = true;
  LoadResult r = LoadString(f.Toml(true), "praefect.toml", env);
  check_that(r.ok() && r.warning_count() == 1, "with skip_unreadable_credentials, valid with one warning:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "", 0, 0,
                        "cannot open the credentials directory ($CREDENTIALS_DIRECTORY): Not a directory; "
                        "checked the configuration without the systemd credentials"),
             "the warning says what was not checked and why:\n" + Dump(r));
  check_that(r.problems[0].file == not_a_dir, "the warning names the directory: " + r.problems[0].file);
  check_that(r.config->auth.token == "file-auth" && r.config->virtual_storages[0].nodes[2].token == "file-node",
             "the secrets file is still read and checked");

  // A directory that opens: a credential in it that cannot be read is an
  // error with or without the option.
  std::filesystem::create_directory(f.creds + "/auth-token");
  Environment readable{f.creds};
  readable.skip_unreadable_credentials = true;
  LoadResult bad = LoadString(f.Toml(true), "praefect.toml", readable);
  check_that(HasProblem(bad, Severity::kError, "auth.token", 0, 0, "cannot read the credential: it is a directory"),
             "an unreadable credential in a readable directory:\n" + Dump(bad));
}

void TestAmbiguousNodeNames(void**) {
  Fixture f;
  std::string toml =
      "listen_addr = ':1'\n[[virtual_storage]]\nname = 'a-b'\n[[virtual_storage.node]]\nstorage = 'c'\n"
      "address = 'tcp://h:1'\n[[virtual_storage]]\nname = 'a'\n[[virtual_storage.node]]\nstorage = 'b-c'\n"
      "address = 'tcp://h:2'\n";
  check_that(LoadString(toml, "p.toml", f.Env()).ok(), "harmless while no such secret exists");
  f.Credential("node-token-a-b-c", "t");
  LoadResult r = LoadString(toml, "p.toml", f.Env());
  check_that(HasProblem(r, Severity::kError, "virtual_storage[1].node[0].token", 9, 1, "ambiguous secrets"),
             "an ambiguous credential is refused:\n" + Dump(r));
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestNames),
      cmocka_unit_test(TestInlineWhenNothingElse),
      cmocka_unit_test(TestPrecedence),
      cmocka_unit_test(TestMissingAndRelativeSecretsFile),
      cmocka_unit_test(TestMalformedSecretsFile),
      cmocka_unit_test(TestUnknownEntriesAndPermissions),
      cmocka_unit_test(TestLongSectionNames),
      cmocka_unit_test(TestBadCredentials),
      cmocka_unit_test(TestTlsKeyCredential),
      cmocka_unit_test(TestUnopenableCredentialsDirectory),
      cmocka_unit_test(TestAmbiguousNodeNames),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
