#include "wire/rewriter.h"

#include <array>

#include "wire/relative_path.h"
#include "wire/target_editor.h"
#include "wire/target_reader.h"

namespace praefect::wire {

namespace {

using internal::StringSlot;
using internal::TargetTally;

// Everything checked before a byte of the message is looked at.
Status CheckInputs(std::string_view message, FieldPath path) {
  if (Status st = CheckFieldPath(path); !st.ok()) return st;
  return CheckMessageSize(message);
}

// storage_name and relative_path, read and rewritten; the object
// directories of a quarantined repository, only checked (every occurrence,
// every element of the repeated one) and passed on as they are.
std::array<StringSlot, 4> RepositorySlots() {
  std::array<StringSlot, 4> slots;
  slots[0].number = kRepositoryStorageNameField;
  slots[1].number = kRepositoryRelativePathField;
  slots[2].number = kRepositoryObjectDirectoryField;
  slots[2].check = ValidateObjectDirectory;
  slots[2].what = "git_object_directory";
  slots[3].number = kRepositoryAlternateObjectDirectoriesField;
  slots[3].check = ValidateObjectDirectory;
  slots[3].what = "git_alternate_object_directories";
  return slots;
}

}  // namespace

StatusOr<RepositoryRef> ReadRepository(std::string_view message, FieldPath path) {
  if (Status st = CheckInputs(message, path); !st.ok()) return st;
  std::array<StringSlot, 4> slots = RepositorySlots();
  TargetTally tally;
  if (Status st = internal::ReadTarget(message, path, slots, &tally); !st.ok()) return st;
  RepositoryRef ref;
  ref.present = tally.occurrences[path.size()] > 0;
  ref.storage_name = slots[0].value;
  ref.relative_path = slots[1].value;
  return ref;
}

StatusOr<std::string> RewriteRepository(std::string_view message, FieldPath path, const RepositoryRewrite& rewrite) {
  if (Status st = CheckInputs(message, path); !st.ok()) return st;
  if (rewrite.storage_name) {
    if (Status st = CheckReplacement("storage_name", *rewrite.storage_name); !st.ok()) return st;
  }
  if (rewrite.relative_path) {
    if (Status st = CheckReplacement("relative_path", *rewrite.relative_path); !st.ok()) return st;
  }
  std::array<StringSlot, 4> slots = RepositorySlots();
  slots[0].replacement = rewrite.storage_name;
  slots[1].replacement = rewrite.relative_path;
  return internal::RewriteTarget(message, path, slots);
}

StatusOr<std::optional<std::string_view>> ReadStringField(std::string_view message, FieldPath path) {
  if (Status st = CheckInputs(message, path); !st.ok()) return st;
  std::array<StringSlot, 1> slots;
  slots[0].number = path.back();
  TargetTally tally;
  if (Status st = internal::ReadTarget(message, path.first(path.size() - 1), slots, &tally); !st.ok()) return st;
  if (slots[0].occurrences == 0) return std::optional<std::string_view>();
  return std::optional<std::string_view>(slots[0].value);
}

StatusOr<std::string> RewriteStringField(std::string_view message, FieldPath path, std::string_view value) {
  if (Status st = CheckInputs(message, path); !st.ok()) return st;
  if (Status st = CheckReplacement("string field " + PathToString(path), value); !st.ok()) return st;
  std::array<StringSlot, 1> slots;
  slots[0].number = path.back();
  slots[0].replacement = value;
  return internal::RewriteTarget(message, path.first(path.size() - 1), slots);
}

}  // namespace praefect::wire
