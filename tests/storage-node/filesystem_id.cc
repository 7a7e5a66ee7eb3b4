#include "filesystem_id.h"

#include <stdio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "fs_util.h"

namespace praefect::storagenode {
namespace {

constexpr char kMetadataFile[] = ".gitaly-metadata";
constexpr char kKey[] = "\"gitaly_filesystem_id\"";

std::string NewUuid() {
  std::random_device rd;
  unsigned char b[16];
  for (auto& c : b) c = static_cast<unsigned char>(rd());
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

// The id out of the metadata JSON; "" when absent.
std::string ParseId(const std::string& json) {
  size_t key = json.find(kKey);
  if (key == std::string::npos) return "";
  size_t open = json.find('"', json.find(':', key) + 1);
  size_t close = json.find('"', open + 1);
  if (open == std::string::npos || close == std::string::npos) return "";
  return json.substr(open + 1, close - open - 1);
}

}  // namespace

StatusOr<std::string> ReadOrCreateFilesystemId(const std::string& storage_path) {
  std::string file = storage_path + "/" + kMetadataFile;
  {
    std::ifstream in(file);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      std::string id = ParseId(ss.str());
      if (!id.empty()) return id;
    }
  }
  if (Status st = MakeDirs(storage_path); !st.ok()) return st;
  std::string id = NewUuid();
  std::string tmp = file + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\"gitaly_filesystem_id\":\"" << id << "\"}";
    if (!out) return Internal("writing " + tmp);
  }
  // link() fails if another process won the race; then read its id.
  if (link(tmp.c_str(), file.c_str()) != 0) {
    unlink(tmp.c_str());
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string existing = ParseId(ss.str());
    if (existing.empty()) return Internal(file + ": expected {\"gitaly_filesystem_id\": \"<uuid>\"}");
    return existing;
  }
  unlink(tmp.c_str());
  SyncDir(storage_path);
  return id;
}

std::string FilesystemType(const std::string& path) {
  struct statfs fs;
  if (statfs(path.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    case 0x6969: return "nfs";
    case 0x2FC12FC1: return "zfs";
    default: return "unknown";
  }
}

}  // namespace praefect::storagenode
