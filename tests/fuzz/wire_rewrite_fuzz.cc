// libFuzzer target for src/wire: the first-message reader and rewriter.
//
// Input layout: byte 0 picks a target (a request type with its field path)
// or, for "raw" targets, a field path read from the input; byte 1 says which
// fields the rewrite sets; bytes 2 and 3 choose the replacement values; the
// rest is the request message. Invariants, checked with abort():
//  * reading succeeds if and only if rewriting succeeds;
//  * a rewrite reads back as the values it set, is idempotent, leaves the
//    message untouched when it sets nothing, and never grows the message by
//    more than the values it adds;
//  * for schema targets, differential against libprotobuf (descriptors built
//    at runtime, so this target does not link the generated Gitaly code):
//    whatever the reader accepts libprotobuf parses to the same values, and
//    the rewrite parses to what parse → set → serialize gives.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wire/rewriter.h"
#include "fuzz_check.h"

namespace pb = google::protobuf;

namespace {

struct Target {
  const char* message;  // null: raw target, path from the input, no differential
  std::vector<uint32_t> path;
  bool repository;
};

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"fuzz.TopRepo", {1}, true},
      {"fuzz.TopHeader", {1, 1}, true},
      {"fuzz.TopDeep", {3, 2, 1}, true},
      {"fuzz.TopBig", {300000}, true},
      {"fuzz.TopStorage", {1}, false},
      {"fuzz.TopNamed", {5, 7}, false},
      {nullptr, {}, true},
      {nullptr, {}, false},
  };
  return targets;
}

void AddField(pb::DescriptorProto* m, const char* name, int number, pb::FieldDescriptorProto::Type type,
              const char* type_name = nullptr) {
  pb::FieldDescriptorProto* f = m->add_field();
  f->set_name(name);
  f->set_number(number);
  f->set_type(type);
  f->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  if (type_name != nullptr) f->set_type_name(type_name);
}

// Each top-level type knows only the fields on its path, so that no byte off
// the path is examined by libprotobuf either (unknown fields are kept as
// bytes), just as the wire module does not examine them.
struct Schema {
  Schema() {
    pb::FileDescriptorProto file;
    file.set_name("wire_rewrite_fuzz.proto");
    file.set_package("fuzz");
    file.set_syntax("proto3");
    const auto kString = pb::FieldDescriptorProto::TYPE_STRING;
    const auto kMessage = pb::FieldDescriptorProto::TYPE_MESSAGE;
    auto add = [&](const char* name) {
      pb::DescriptorProto* m = file.add_message_type();
      m->set_name(name);
      return m;
    };
    pb::DescriptorProto* repo = add("Repository");
    AddField(repo, "storage_name", 2, kString);
    AddField(repo, "relative_path", 3, kString);
    AddField(add("Header"), "repository", 1, kMessage, ".fuzz.Repository");
    AddField(add("Outer"), "header", 2, kMessage, ".fuzz.Header");
    AddField(add("Named"), "storage_name", 7, kString);
    AddField(add("TopRepo"), "repository", 1, kMessage, ".fuzz.Repository");
    AddField(add("TopHeader"), "header", 1, kMessage, ".fuzz.Header");
    AddField(add("TopDeep"), "outer", 3, kMessage, ".fuzz.Outer");
    AddField(add("TopBig"), "repository", 300000, kMessage, ".fuzz.Repository");
    AddField(add("TopStorage"), "storage_name", 1, kString);
    AddField(add("TopNamed"), "named", 5, kMessage, ".fuzz.Named");
    FUZZ_CHECK(pool.BuildFile(file) != nullptr);
    pb::SetLogHandler(nullptr);  // libprotobuf logs every invalid UTF-8 string it parses
  }
  const pb::Message* Prototype(const char* name) { return factory.GetPrototype(pool.FindMessageTypeByName(name)); }
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory{&pool};
};

Schema& GetSchema() {
  static Schema* schema = new Schema();
  return *schema;
}

// Valid UTF-8 of a length chosen by `selector`, up to a few hundred bytes so
// that length prefixes change size.
std::string Replacement(uint8_t selector, char letter) {
  std::string out;
  const size_t length = selector < 200 ? selector % 20 : (selector - 200) * 5;
  for (size_t i = 0; i < length; ++i) out += (i % 7 == 3) ? std::string("\xc3\xa9") : std::string(1, letter);
  return out;
}

const pb::FieldDescriptor* Field(const pb::Message& m, uint32_t number) {
  const pb::FieldDescriptor* f = m.GetDescriptor()->FindFieldByNumber(static_cast<int>(number));
  FUZZ_CHECK(f != nullptr);
  return f;
}

const pb::Message* Walk(const pb::Message& m, const std::vector<uint32_t>& path, size_t count) {
  const pb::Message* cur = &m;
  for (size_t i = 0; i < count; ++i) {
    const pb::FieldDescriptor* f = Field(*cur, path[i]);
    if (!cur->GetReflection()->HasField(*cur, f)) return nullptr;
    cur = &cur->GetReflection()->GetMessage(*cur, f);
  }
  return cur;
}

pb::Message* MutableWalk(pb::Message* m, const std::vector<uint32_t>& path, size_t count) {
  for (size_t i = 0; i < count; ++i) m = m->GetReflection()->MutableMessage(m, Field(*m, path[i]));
  return m;
}

std::string Get(const pb::Message* m, uint32_t number) {
  return m == nullptr ? std::string() : m->GetReflection()->GetString(*m, Field(*m, number));
}

void Set(pb::Message* m, uint32_t number, const std::string& value) {
  m->GetReflection()->SetString(m, Field(*m, number), value);
}

// The values a read returns, owned, so they outlive the message they view.
struct Values {
  bool ok = false;
  bool present = false;
  std::string storage;
  std::string relative;
};

Values Read(std::string_view message, const Target& t, const std::vector<uint32_t>& path) {
  Values v;
  if (t.repository) {
    auto ref = praefect::wire::ReadRepository(message, path);
    if (!ref.ok()) return v;
    v = {true, ref->present, std::string(ref->storage_name), std::string(ref->relative_path)};
  } else {
    auto value = praefect::wire::ReadStringField(message, path);
    if (!value.ok()) return v;
    v = {true, value->has_value(), std::string(value->value_or("")), ""};
  }
  return v;
}

praefect::StatusOr<std::string> Rewrite(std::string_view message, const Target& t, const std::vector<uint32_t>& path,
                                        const std::optional<std::string>& storage,
                                        const std::optional<std::string>& relative) {
  if (!t.repository) return praefect::wire::RewriteStringField(message, path, *storage);
  praefect::wire::RepositoryRewrite rewrite;
  if (storage) rewrite.storage_name = *storage;
  if (relative) rewrite.relative_path = *relative;
  return praefect::wire::RewriteRepository(message, path, rewrite);
}

void Differential(const Target& t, std::string_view in, const Values& before, const std::string* out,
                  const std::optional<std::string>& storage, const std::optional<std::string>& relative) {
  const pb::Message* prototype = GetSchema().Prototype(t.message);
  std::unique_ptr<pb::Message> parsed(prototype->New());
  // Stricter than libprotobuf is allowed (groups, non-messages on the path);
  // more lenient is not.
  FUZZ_CHECK(parsed->ParseFromArray(in.data(), static_cast<int>(in.size())));
  std::unique_ptr<pb::Message> expected(parsed->New());
  expected->CopyFrom(*parsed);
  if (t.repository) {
    const pb::Message* repo = Walk(*parsed, t.path, t.path.size());
    FUZZ_CHECK(before.present == (repo != nullptr));
    FUZZ_CHECK(before.storage == Get(repo, 2) && before.relative == Get(repo, 3));
    if (storage || relative) {
      pb::Message* target = MutableWalk(expected.get(), t.path, t.path.size());
      if (storage) Set(target, 2, *storage);
      if (relative) Set(target, 3, *relative);
    }
  } else {
    FUZZ_CHECK(before.storage == Get(Walk(*parsed, t.path, t.path.size() - 1), t.path.back()));
    Set(MutableWalk(expected.get(), t.path, t.path.size() - 1), t.path.back(), *storage);
  }
  std::unique_ptr<pb::Message> got(prototype->New());
  FUZZ_CHECK(got->ParseFromString(*out));
  FUZZ_CHECK(pb::util::MessageDifferencer::Equals(*expected, *got));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const Target& t = Targets()[data[0] % Targets().size()];
  std::vector<uint32_t> path = t.path;
  size_t header = 4;
  if (t.message == nullptr) {
    // Raw: 1 to 4 path elements, small numbers mostly, 0 and huge ones too.
    const size_t length = (data[0] >> 3) % 4 + 1;
    if (size < header + length) return 0;
    for (size_t i = 0; i < length; ++i) {
      const uint8_t b = data[header + i];
      path.push_back(b == 0 ? 0u : b < 240 ? (b - 1u) % 8 + 1 : (1u << 29) - 1 - (b - 240u));
    }
    header += length;
  }
  std::optional<std::string> storage;
  std::optional<std::string> relative;
  if ((data[1] & 1) != 0 || !t.repository) storage = Replacement(data[2], 's');
  if ((data[1] & 2) != 0 && t.repository) relative = Replacement(data[3], 'r');
  const std::string_view in(reinterpret_cast<const char*>(data) + header, size - header);

  const Values before = Read(in, t, path);
  auto out = Rewrite(in, t, path, storage, relative);
  FUZZ_CHECK(before.ok == out.ok());
  if (!out.ok()) {
    const bool bad_path = out.status().code() == praefect::StatusCode::kInternal;
    FUZZ_CHECK(bad_path ? t.message == nullptr : out.status().code() == praefect::StatusCode::kInvalidArgument);
    return 0;
  }
  const bool sets = storage.has_value() || relative.has_value();
  if (!sets) FUZZ_CHECK(*out == in);

  // No amplification: the output grows by at most the values it adds, their
  // tags and lengths, and the re-encoded lengths around them.
  const size_t added = (storage ? storage->size() : 0) + (relative ? relative->size() : 0);
  FUZZ_CHECK(out->size() <= in.size() + added + 2 * (16 + 10 * path.size()));

  const Values after = Read(*out, t, path);
  FUZZ_CHECK(after.ok);
  FUZZ_CHECK(after.present == (before.present || sets));
  FUZZ_CHECK(after.storage == (storage ? *storage : before.storage));
  FUZZ_CHECK(after.relative == (relative ? *relative : before.relative));
  auto again = Rewrite(*out, t, path, storage, relative);
  FUZZ_CHECK(again.ok() && *again == *out);

  if (t.message != nullptr) Differential(t, in, before, &*out, storage, relative);
  return 0;
}
