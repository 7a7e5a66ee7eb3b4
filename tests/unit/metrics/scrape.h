#pragma once

// Test helpers: an HTTP client over a plain socket, and line matching in a
// Prometheus text exposition. Include before test_support.h.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <string_view>

namespace praefect::metrics::testing {

// A connection to 127.0.0.1:port whose reads time out after 5 s, so that a
// server that never answers fails the test, not hangs it; -1 when connecting
// fails.
inline int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends all of `data`; false on error.
inline bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Everything the server sends on `fd` until it closes its end (or a read
// times out).
inline std::string ReadAll(int fd) {
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
  return response;
}

// Sends `request` verbatim to 127.0.0.1:port and returns everything the server
// answers until it closes the connection; "" when connecting fails.
inline std::string RawHttp(int port, std::string_view request) {
  int fd = Connect(port);
  if (fd < 0) return "";
  std::string response;
  if (SendAll(fd, request)) response = ReadAll(fd);
  close(fd);
  return response;
}

inline std::string HttpGet(int port, std::string_view path, std::string_view method = "GET") {
  return RawHttp(port, std::string(method) + " " + std::string(path) +
                           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n");
}

// The body of an HTTP response (after the blank line); "" without one.
inline std::string Body(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// True when `text` has `line` as a whole line.
inline bool HasLine(std::string_view text, std::string_view line) {
  size_t pos = 0;
  while ((pos = text.find(line, pos)) != std::string_view::npos) {
    bool starts = pos == 0 || text[pos - 1] == '\n';
    size_t end = pos + line.size();
    bool ends = end == text.size() || text[end] == '\n' || text[end] == '\r';
    if (starts && ends) return true;
    pos = end;
  }
  return false;
}

}  // namespace praefect::metrics::testing
