#include "fs_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace praefect::storagenode {

Status MakeDirs(const std::string& path, int mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return Internal("creating directory " + cur + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  auto rm = [](const char* p, const struct stat*, int, struct FTW*) -> int { return remove(p); };
  if (nftw(path.c_str(), rm, 32, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
    return Internal("removing " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

void SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

StatusOr<std::string> MakeTempDir(const std::string& storage_path, const std::string& prefix) {
  std::string tmp = storage_path + "/+gitaly/tmp";
  if (Status st = MakeDirs(tmp, 0700); !st.ok()) return st;
  std::string templ = tmp + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr)
    return Internal("creating a temporary directory in " + tmp + ": " + std::strerror(errno));
  return std::string(buf.data());
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

Status MoveIntoPlace(const std::string& staged, const std::string& path, const std::string& what,
                     const std::string& exists_message) {
  if (Status st = MakeDirs(Dirname(path)); !st.ok()) return st;
  SyncDir(staged);
  if (rename(staged.c_str(), path.c_str()) != 0) {
    int err = errno;
    if (err == EEXIST || err == ENOTEMPTY) return Status(StatusCode::kAlreadyExists, exists_message);
    return Internal(what + ": moving into place: " + std::strerror(err));
  }
  SyncDir(Dirname(path));
  return Status::Ok();
}

}  // namespace praefect::storagenode
