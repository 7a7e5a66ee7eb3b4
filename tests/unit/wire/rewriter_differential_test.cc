// Differential test: on thousands of generated Gitaly requests, the wire
// reader must return what libprotobuf's parser sees, and the rewriter must
// produce bytes that parse to what parse → set → serialize gives.

#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "conflicts.pb.h"
#include "namespace.pb.h"
#include "objectpool.pb.h"
#include "operations.pb.h"
#include "repository-service.pb.h"
#include "test_support.h"
#include "wire/rewriter.h"

namespace pb = google::protobuf;

namespace {

using Rng = std::mt19937_64;

// A request type and the path of its target: a gitaly.Repository, or (for
// storage-scoped requests) a string field.
struct Target {
  const pb::Message* prototype;
  std::vector<uint32_t> path;
  bool repository;
};

std::vector<Target> Targets() {
  return {
      {&gitaly::RepositoryExistsRequest::default_instance(), {1}, true},
      {&gitaly::CreateForkRequest::default_instance(), {1}, true},
      {&gitaly::CreateForkRequest::default_instance(), {2}, true},
      {&gitaly::FetchSourceBranchRequest::default_instance(), {1}, true},
      {&gitaly::FetchSourceBranchRequest::default_instance(), {2}, true},
      {&gitaly::CreateObjectPoolRequest::default_instance(), {1, 1}, true},
      {&gitaly::CreateObjectPoolRequest::default_instance(), {2}, true},
      {&gitaly::LinkRepositoryToObjectPoolRequest::default_instance(), {1, 1}, true},
      {&gitaly::UserCommitFilesRequest::default_instance(), {1, 1}, true},
      {&gitaly::ResolveConflictsRequest::default_instance(), {1, 1}, true},
      {&gitaly::ResolveConflictsRequest::default_instance(), {1, 3}, true},
      {&gitaly::AddNamespaceRequest::default_instance(), {1}, false},
      {&gitaly::RenameNamespaceRequest::default_instance(), {1}, false},
      {&gitaly::CreateObjectPoolRequest::default_instance(), {1, 1, 2}, false},
      {&gitaly::ResolveConflictsRequest::default_instance(), {1, 3, 3}, false},
  };
}

bool Chance(Rng& rng, int percent) { return static_cast<int>(rng() % 100) < percent; }

// Valid UTF-8 with one- to four-byte characters; sometimes long enough that
// its length prefix needs two or three bytes.
std::string RandomText(Rng& rng) {
  static const char* const kPieces[] = {"a", "Z", "/", ".", "@", "-", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  size_t length = rng() % 12;
  if (Chance(rng, 5)) length = 100 + rng() % 400;
  std::string out;
  for (size_t i = 0; i < length; ++i) out += kPieces[rng() % std::size(kPieces)];
  return out;
}

std::string RandomBytes(Rng& rng) {
  std::string out(rng() % 20, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

void AddUnknownFields(pb::Message* m, Rng& rng) {
  pb::UnknownFieldSet* unknown = m->GetReflection()->MutableUnknownFields(m);
  const int count = static_cast<int>(rng() % 3) + 1;
  for (int i = 0; i < count; ++i) {
    int number = 1000 + static_cast<int>(rng() % 100000);
    if (Chance(rng, 20)) number = (1 << 29) - 1 - static_cast<int>(rng() % 10);
    if (m->GetDescriptor()->FindFieldByNumber(number) != nullptr) continue;
    switch (rng() % 4) {
      case 0:
        unknown->AddVarint(number, rng());
        break;
      case 1:
        unknown->AddFixed32(number, static_cast<uint32_t>(rng()));
        break;
      case 2:
        unknown->AddFixed64(number, rng());
        break;
      default:
        unknown->AddLengthDelimited(number, RandomBytes(rng));
        break;
    }
  }
}

// Sets a random selection of `m`'s fields. `keep_oneof` is the path field of
// this level: its oneof siblings stay unset (see rewriter.h on oneofs).
void Fill(pb::Message* m, Rng& rng, int depth, const pb::FieldDescriptor* keep_oneof) {
  const pb::Descriptor* d = m->GetDescriptor();
  const pb::Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (keep_oneof && f != keep_oneof && f->containing_oneof() == keep_oneof->containing_oneof() &&
        f->containing_oneof() != nullptr) {
      continue;
    }
    if (!Chance(rng, f == keep_oneof ? 85 : 50)) continue;
    const int n = f->is_repeated() ? static_cast<int>(rng() % 3) : 1;
    for (int k = 0; k < n; ++k) {
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth < 4) {
            pb::Message* sub = f->is_repeated() ? r->AddMessage(m, f) : r->MutableMessage(m, f);
            Fill(sub, rng, depth + 1, nullptr);
          }
          break;
        case pb::FieldDescriptor::CPPTYPE_STRING: {
          std::string v = f->type() == pb::FieldDescriptor::TYPE_BYTES ? RandomBytes(rng) : RandomText(rng);
          f->is_repeated() ? r->AddString(m, f, v) : r->SetString(m, f, v);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_BOOL:
          f->is_repeated() ? r->AddBool(m, f, rng() & 1) : r->SetBool(m, f, rng() & 1);
          break;
        case pb::FieldDescriptor::CPPTYPE_ENUM:
          f->is_repeated() ? r->AddEnumValue(m, f, static_cast<int>(rng() % 4))
                           : r->SetEnumValue(m, f, static_cast<int>(rng() % 4));
          break;
        case pb::FieldDescriptor::CPPTYPE_INT32:
          f->is_repeated() ? r->AddInt32(m, f, static_cast<int32_t>(rng()))
                           : r->SetInt32(m, f, static_cast<int32_t>(rng()));
          break;
        case pb::FieldDescriptor::CPPTYPE_INT64:
          f->is_repeated() ? r->AddInt64(m, f, static_cast<int64_t>(rng()))
                           : r->SetInt64(m, f, static_cast<int64_t>(rng()));
          break;
        default:
          break;  // no other scalar types on these requests' paths; skipping them is fine
      }
    }
  }
  if (Chance(rng, 30)) AddUnknownFields(m, rng);
}

// The message at `path` of `m`, or null when a message on the way is absent.
const pb::Message* Walk(const pb::Message& m, const std::vector<uint32_t>& path, size_t count) {
  const pb::Message* cur = &m;
  for (size_t i = 0; i < count; ++i) {
    const pb::FieldDescriptor* f = cur->GetDescriptor()->FindFieldByNumber(static_cast<int>(path[i]));
    if (!cur->GetReflection()->HasField(*cur, f)) return nullptr;
    cur = &cur->GetReflection()->GetMessage(*cur, f);
  }
  return cur;
}

pb::Message* MutableWalk(pb::Message* m, const std::vector<uint32_t>& path, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    m = m->GetReflection()->MutableMessage(m, m->GetDescriptor()->FindFieldByNumber(static_cast<int>(path[i])));
  }
  return m;
}

std::string GetString(const pb::Message* m, uint32_t number) {
  if (m == nullptr) return "";
  return m->GetReflection()->GetString(*m, m->GetDescriptor()->FindFieldByNumber(static_cast<int>(number)));
}

void SetString(pb::Message* m, uint32_t number, const std::string& value) {
  m->GetReflection()->SetString(m, m->GetDescriptor()->FindFieldByNumber(static_cast<int>(number)), value);
}

// `payload` as the content of the message at path[0..count).
std::string Wrap(std::string payload, const std::vector<uint32_t>& path, size_t count) {
  for (size_t i = count; i-- > 0;) {
    pb::UnknownFieldSet set;
    set.AddLengthDelimited(static_cast<int>(path[i]), payload);
    payload.clear();
    set.SerializeToString(&payload);
  }
  return payload;
}

// The bytes of one request: serializations of several generated messages,
// sometimes field by field in shuffled order, sometimes with extra
// occurrences of the target alone, and rarely an invalid UTF-8 string there.
std::string Generate(const Target& t, Rng& rng, bool* invalid_utf8) {
  const pb::FieldDescriptor* path_field = t.prototype->GetDescriptor()->FindFieldByNumber(static_cast<int>(t.path[0]));
  std::vector<std::string> pieces;
  const int messages = Chance(rng, 70) ? 1 : 2 + static_cast<int>(rng() % 2);
  for (int i = 0; i < messages; ++i) {
    std::unique_ptr<pb::Message> m(t.prototype->New());
    Fill(m.get(), rng, 0, path_field);
    if (!Chance(rng, 30)) {
      pieces.push_back(m->SerializeAsString());
      continue;
    }
    std::vector<const pb::FieldDescriptor*> fields;
    m->GetReflection()->ListFields(*m, &fields);
    for (const pb::FieldDescriptor* f : fields) {
      std::unique_ptr<pb::Message> single(m->New());
      single->GetReflection()->SwapFields(m.get(), single.get(), {f});
      pieces.push_back(single->SerializeAsString());
    }
    std::string unknown;
    m->GetReflection()->GetUnknownFields(*m).SerializeToString(&unknown);
    pieces.push_back(unknown);
  }
  const size_t target_depth = t.repository ? t.path.size() : t.path.size() - 1;
  if (Chance(rng, 25)) {
    std::unique_ptr<pb::Message> m(t.prototype->New());
    pb::Message* target = MutableWalk(m.get(), t.path, target_depth);
    if (t.repository) {
      if (Chance(rng, 50)) SetString(target, 2, RandomText(rng));
      if (Chance(rng, 50)) SetString(target, 3, RandomText(rng));
    } else {
      SetString(target, t.path.back(), RandomText(rng));
    }
    pieces.push_back(m->SerializeAsString());
  }
  *invalid_utf8 = Chance(rng, 2);
  if (*invalid_utf8) {
    const uint32_t field = t.repository ? 2 + static_cast<uint32_t>(rng() % 2) : t.path.back();
    pb::UnknownFieldSet set;
    set.AddLengthDelimited(static_cast<int>(field), "ok\xff");
    std::string bad;
    set.SerializeToString(&bad);
    pieces.push_back(Wrap(bad, t.path, target_depth));
  }
  std::shuffle(pieces.begin(), pieces.end(), rng);
  std::string wire;
  for (const std::string& p : pieces) wire += p;
  return wire;
}

struct Counts {
  int cases = 0;
  int absent = 0;
  int created = 0;
  int refused = 0;
};

void CheckCase(const Target& t, Rng& rng, Counts* counts) {
  bool invalid_utf8 = false;
  const std::string wire = Generate(t, rng, &invalid_utf8);
  const std::string where = t.prototype->GetDescriptor()->full_name() + " path " + praefect::wire::PathToString(t.path);
  std::unique_ptr<pb::Message> parsed(t.prototype->New());
  const bool parses = parsed->ParseFromString(wire);
  ++counts->cases;

  std::optional<std::string> storage = Chance(rng, 70) ? std::optional(RandomText(rng)) : std::nullopt;
  std::optional<std::string> relative = Chance(rng, 50) ? std::optional(RandomText(rng)) : std::nullopt;
  if (!t.repository && !storage) storage = RandomText(rng);
  praefect::wire::RepositoryRewrite rewrite;
  if (storage) rewrite.storage_name = *storage;
  if (relative) rewrite.relative_path = *relative;

  auto read_status = t.repository ? praefect::wire::ReadRepository(wire, t.path).status()
                                  : praefect::wire::ReadStringField(wire, t.path).status();
  auto rewritten = t.repository ? praefect::wire::RewriteRepository(wire, t.path, rewrite)
                                : praefect::wire::RewriteStringField(wire, t.path, *storage);
  if (!parses) {
    // Only the planted invalid UTF-8 makes a generated request unparsable.
    expect_that(invalid_utf8, "libprotobuf to parse " + where);
    expect_that(read_status.code() == praefect::StatusCode::kInvalidArgument, "the reader to refuse " + where);
    expect_that(rewritten.status().code() == praefect::StatusCode::kInvalidArgument, "the rewriter to refuse " + where);
    ++counts->refused;
    return;
  }
  assert_status_ok(read_status);
  assert_status_ok(rewritten.status());

  // The reader agrees with the parser.
  std::unique_ptr<pb::Message> expected(parsed->New());
  expected->CopyFrom(*parsed);
  if (t.repository) {
    const pb::Message* repo = Walk(*parsed, t.path, t.path.size());
    auto ref = praefect::wire::ReadRepository(wire, t.path);
    expect_that(ref->present == (repo != nullptr), "presence to agree for " + where);
    expect_that(ref->storage_name == GetString(repo, 2), "storage_name to agree for " + where);
    expect_that(ref->relative_path == GetString(repo, 3), "relative_path to agree for " + where);
    if (repo == nullptr) ++counts->absent;
    if (repo == nullptr && (storage || relative)) ++counts->created;
    if (storage || relative) {
      pb::Message* target = MutableWalk(expected.get(), t.path, t.path.size());
      if (storage) SetString(target, 2, *storage);
      if (relative) SetString(target, 3, *relative);
    }
  } else {
    const pb::Message* holder = Walk(*parsed, t.path, t.path.size() - 1);
    auto value = praefect::wire::ReadStringField(wire, t.path);
    expect_that(std::string(value->value_or("")) == GetString(holder, t.path.back()),
                "the string to agree for " + where);
    if (!value->has_value()) ++counts->absent;
    SetString(MutableWalk(expected.get(), t.path, t.path.size() - 1), t.path.back(), *storage);
  }

  // The rewrite parses to parse → set → serialize.
  std::unique_ptr<pb::Message> got(parsed->New());
  expect_that(got->ParseFromString(*rewritten), "the rewritten " + where + " to parse");
  if (!pb::util::MessageDifferencer::Equals(*expected, *got)) {
    fail_msg("rewrite of %s differs from libprotobuf:\n want %s\n got  %s", where.c_str(),
             expected->ShortDebugString().c_str(), got->ShortDebugString().c_str());
  }
  // Nothing to set: the very same bytes.
  if (t.repository && !storage && !relative) expect_that(*rewritten == wire, "an unchanged " + where);
}

}  // namespace

static void test_agrees_with_libprotobuf(void**) {
  pb::SetLogHandler(nullptr);  // the planted invalid UTF-8 makes libprotobuf log
  const auto start = std::chrono::steady_clock::now();
  Rng rng(20240601);
  Counts counts;
  const std::vector<Target> targets = Targets();
  for (int round = 0; round < 1200; ++round) {
    for (const Target& t : targets) CheckCase(t, rng, &counts);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_message("%d cases (%d targets absent, %d created by the rewrite, %d refused as invalid UTF-8) in %.2f s\n",
                counts.cases, counts.absent, counts.created, counts.refused, seconds);
  // The generator must exercise every branch, or the comparison proves little.
  expect_that(counts.absent > 1000 && counts.created > 500 && counts.refused > 100, "every kind of case to occur");
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_agrees_with_libprotobuf),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
