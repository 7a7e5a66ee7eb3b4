// RepoLocator: storages resolve, unknown storages and escaping paths are
// refused with INVALID_ARGUMENT naming the problem.
#include "storage_locator.h"

#include "test_support.h"

using praefect::StatusCode;
using praefect::storagenode::StorageRepoLocator;

static gitaly::Repository Repo(const std::string& storage, const std::string& rel) {
  gitaly::Repository r;
  r.set_storage_name(storage);
  r.set_relative_path(rel);
  return r;
}

static const StorageRepoLocator& Locator() {
  static const StorageRepoLocator locator({{"default", "/srv/a/"}, {"other", "/srv/b"}});
  return locator;
}

static void ResolvesPaths(void**) {
  auto p = Locator().Locate(Repo("default", "group/project.git"));
  assert_status_ok(p.status());
  assert_string_equal(p->c_str(), "/srv/a/group/project.git");
  p = Locator().Locate(Repo("other", "./x//y.git/"));
  assert_status_ok(p.status());
  assert_string_equal(p->c_str(), "/srv/b/x/y.git");
}

static void Refuses(const std::string& storage, const std::string& rel, const char* needle) {
  auto p = Locator().Locate(Repo(storage, rel));
  expect_that(!p.ok(), "refusal of " + storage + ":" + rel);
  expect_that(p.status().code() == StatusCode::kInvalidArgument, p.status().ToString());
  expect_that(p.status().message().find(needle) != std::string::npos,
              "\"" + p.status().message() + "\" to contain \"" + needle + "\"");
}

static void RefusesBadRequests(void**) {
  Refuses("nope", "a.git", "no such storage: \"nope\"");
  Refuses("default", "", "relative path missing");
  Refuses("default", "/etc/passwd", "relative path is absolute");
  Refuses("default", "../other/a.git", "escapes root directory");
  Refuses("default", "a/../../b.git", "escapes root directory");
  Refuses("default", "a/..", "escapes root directory");
  Refuses("default", "./", "names the storage root");
  Refuses("default", "+gitaly/tmp/x", "internal directory");
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ResolvesPaths),
      cmocka_unit_test(RefusesBadRequests),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
