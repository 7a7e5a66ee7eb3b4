#include "commit_reader.h"

#include <cstdlib>

namespace praefect::storagenode {
namespace {

// "Name <email> 1700000000 +0100"
void ParseSignature(const std::string& text, gitaly::CommitAuthor* author) {
  size_t lt = text.find('<');
  size_t gt = text.find('>', lt == std::string::npos ? 0 : lt);
  if (lt == std::string::npos || gt == std::string::npos) {
    author->set_name(text);
    return;
  }
  std::string name = text.substr(0, lt);
  while (!name.empty() && name.back() == ' ') name.pop_back();
  author->set_name(name);
  author->set_email(text.substr(lt + 1, gt - lt - 1));
  author->mutable_date()->set_seconds(std::strtoll(text.c_str() + gt + 1, nullptr, 10));
}

}  // namespace

StatusOr<gitaly::GitCommit> ParseCommit(const std::string& oid, const std::string& raw) {
  gitaly::GitCommit commit;
  commit.set_id(oid);
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t nl = raw.find('\n', pos);
    if (nl == std::string::npos) nl = raw.size();
    std::string line = raw.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) break;  // end of headers
    size_t sp = line.find(' ');
    std::string key = line.substr(0, sp);
    std::string value = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (key == "parent") commit.add_parent_ids(value);
    else if (key == "author") ParseSignature(value, commit.mutable_author());
    else if (key == "committer") ParseSignature(value, commit.mutable_committer());
  }
  std::string body = pos < raw.size() ? raw.substr(pos) : "";
  commit.set_body(body);
  commit.set_body_size(static_cast<int64_t>(body.size()));
  commit.set_subject(body.substr(0, body.find('\n')));
  return commit;
}

StatusOr<gitaly::GitCommit> ReadCommit(const GitEnv& env, const std::string& repo_path, const std::string& oid) {
  auto run = RunGit(env, repo_path, {"cat-file", "commit", oid});
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) return NotFound("commit " + oid + " not found: " + run->err);
  return ParseCommit(oid, run->out);
}

}  // namespace praefect::storagenode
