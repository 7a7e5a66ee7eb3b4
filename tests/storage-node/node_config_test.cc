// The node's config loader: Gitaly's shape loads, and every mistake is
// reported with the file, line and key.
#include "node_config.h"

#include <cstring>

#include "test_support.h"

using praefect::StatusCode;
using praefect::storagenode::ParseNodeConfig;

static void LoadsGitalyShape(void**) {
  auto cfg = ParseNodeConfig(R"(
listen_addr = "127.0.0.1:0"
socket_path = "/tmp/node.sock"
[auth]
token = "secret"
transitioning = true
[[storage]]
name = "default"
path = "/srv/a"
[[storage]]
name = "other"
path = "/srv/b"
)",
                             "node.toml");
  assert_status_ok(cfg.status());
  assert_string_equal(cfg->listen_addr.c_str(), "127.0.0.1:0");
  assert_string_equal(cfg->socket_path.c_str(), "/tmp/node.sock");
  assert_string_equal(cfg->auth_token.c_str(), "secret");
  assert_true(cfg->auth_transitioning);
  assert_int_equal(cfg->storages.size(), 2);
  assert_string_equal(cfg->storages[1].name.c_str(), "other");
  assert_string_equal(cfg->storages[1].path.c_str(), "/srv/b");
}

static void ExpectError(const char* text, const char* needle) {
  auto cfg = ParseNodeConfig(text, "node.toml");
  expect_that(!cfg.ok(), std::string("an error for: ") + text);
  expect_that(cfg.status().code() == StatusCode::kInvalidArgument, cfg.status().ToString());
  expect_that(cfg.status().message().find(needle) != std::string::npos,
              "\"" + cfg.status().message() + "\" to contain \"" + needle + "\"");
}

static void ReportsMistakes(void**) {
  ExpectError("listen_addr = \"127.0.0.1:0\"\n", "node.toml: storage: expected one or more [[storage]]");
  ExpectError("listen_addr = 5\n[[storage]]\nname=\"a\"\npath=\"/a\"\n",
              "node.toml:1: listen_addr: expected a string, found integer");
  ExpectError("[[storage]]\nname=\"a\"\npath=\"/a\"\n", "listen_addr, socket_path: expected at least one");
  ExpectError("listen_addr = \"x:1\"\n[[storage]]\nname=\"a\"\npath=\"rel\"\n",
              "node.toml:2: storage[0].path: expected an absolute directory, found \"rel\"");
  ExpectError("listen_addr = \"x:1\"\n[[storage]]\nname=\"a\"\npath=\"/a\"\n[[storage]]\nname=\"a\"\npath=\"/b\"\n",
              "storage[1].name: storage \"a\" is declared twice");
  ExpectError("listen_addr = \"x:1\"\nbogus = 1\n[[storage]]\nname=\"a\"\npath=\"/a\"\n",
              "node.toml:2: bogus: unknown key");
  ExpectError("listen_addr = \"x:1\"\n[auth]\ntransitioning = \"yes\"\n[[storage]]\nname=\"a\"\npath=\"/a\"\n",
              "node.toml:3: auth.transitioning: expected a boolean, found string");
  ExpectError("listen_addr = \n", "node.toml:1:");
  ExpectError("listen_addr = \"nocolon\"\n[[storage]]\nname=\"a\"\npath=\"/a\"\n",
              "listen_addr: expected host:port");
}

static void MissingFileNamesIt(void**) {
  auto cfg = praefect::storagenode::LoadNodeConfig("/nonexistent/node.toml");
  assert_false(cfg.ok());
  assert_int_equal(static_cast<int>(cfg.status().code()), static_cast<int>(StatusCode::kNotFound));
  assert_non_null(strstr(cfg.status().message().c_str(), "/nonexistent/node.toml"));
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(LoadsGitalyShape),
      cmocka_unit_test(ReportsMistakes),
      cmocka_unit_test(MissingFileNamesIt),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
