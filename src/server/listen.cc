#include "server/listen.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace praefect::server {

Status PrepareUnixSocket(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return FailedPrecondition("socket_path \"" + path + "\": the directory \"" + dir +
                              "\" does not exist: create it (systemd: RuntimeDirectory=) or change socket_path");
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path)
    return InvalidArgument("socket_path \"" + path + "\" is longer than the " +
                           std::to_string(sizeof addr.sun_path - 1) + " bytes a unix socket path may have");
  if (lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (!S_ISSOCK(st.st_mode))
    return FailedPrecondition("socket_path \"" + path + "\" exists and is not a socket: move it away or change "
                              "socket_path");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FailedPrecondition(std::string("socket(): ") + std::strerror(errno));
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  close(fd);
  if (rc == 0)
    return FailedPrecondition("socket_path \"" + path + "\": another process is serving on it (another praefect?); "
                              "stop it or change socket_path");
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return FailedPrecondition("socket_path \"" + path + "\": removing the stale socket: " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace praefect::server
