// ParseRemote: the URL and address forms git-remote-gitaly accepts.
#include "remote_url.h"

#include "test_support.h"  // last: cmocka's macros

using praefect::StatusCode;
using praefect::gitremote::ParseRemote;
using praefect::gitremote::Remote;

static void test_host_port_and_nested_path(void**) {
  auto r = ParseRemote("gitaly://node1:8075/default/@hashed/ab/cd/abcd.git", "");
  assert_true(r.ok());
  assert_string_equal(r->target.c_str(), "node1:8075");
  assert_false(r->tls);
  assert_string_equal(r->storage_name.c_str(), "default");
  assert_string_equal(r->relative_path.c_str(), "@hashed/ab/cd/abcd.git");
}

static void test_address_override_forms(void**) {
  auto unix_socket = ParseRemote("gitaly:///default/repo.git", "unix:/tmp/x/gitaly.sock");
  assert_true(unix_socket.ok());
  assert_string_equal(unix_socket->target.c_str(), "unix:/tmp/x/gitaly.sock");
  auto tcp = ParseRemote("gitaly://ignored:1/default/repo.git", "tcp://10.0.0.1:2305");
  assert_true(tcp.ok());
  assert_string_equal(tcp->target.c_str(), "10.0.0.1:2305");
  assert_false(tcp->tls);
  auto tls = ParseRemote("gitaly:///default/repo.git", "tls://gitaly.example.com:9999");
  assert_true(tls.ok());
  assert_string_equal(tls->target.c_str(), "gitaly.example.com:9999");
  assert_true(tls->tls);
}

static void test_percent_decoding(void**) {
  auto r = ParseRemote("gitaly://h:1/my%20storage/group/pro%2Fj.git", "");
  assert_true(r.ok());
  assert_string_equal(r->storage_name.c_str(), "my storage");
  assert_string_equal(r->relative_path.c_str(), "group/pro/j.git");
}

static void test_rejects(void**) {
  const char* bad[] = {
      "http://h:1/default/repo.git",  // wrong scheme
      "gitaly://h:1/default",         // no relative path
      "gitaly://h:1/default/",        // empty relative path
      "gitaly://h:1//repo.git",       // empty storage
      "gitaly:///default/repo.git",   // no address and no override
      "gitaly://h:1/default/bad%zz",  // broken escape
  };
  for (const char* url : bad) {
    auto r = ParseRemote(url, "");
    assert_false(r.ok());
    assert_int_equal(static_cast<int>(r.status().code()), static_cast<int>(StatusCode::kInvalidArgument));
  }
  assert_false(ParseRemote("gitaly://h:1/default/r.git", "http://x:1").ok());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_port_and_nested_path),
      cmocka_unit_test(test_address_override_forms),
      cmocka_unit_test(test_percent_decoding),
      cmocka_unit_test(test_rejects),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
