#include "hook_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "hook_protocol.h"
#include "log/log.h"

namespace praefect::storagenode {
namespace {

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string RandomToken() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 15]);
  }
  return token;
}

std::string OneLine(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace

StatusOr<std::unique_ptr<HookServer>> HookServer::Start(const std::string& socket_path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof sun.sun_path)
    return InvalidArgument("hook socket path \"" + socket_path + "\" is too long for a unix socket");
  std::memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
  unlink(socket_path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 || listen(fd, SOMAXCONN) != 0) {
    Status st = Internal("cannot listen on the hook socket " + socket_path + ": " + std::strerror(errno));
    if (fd >= 0) close(fd);
    return st;
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(fd);
    return Internal(std::string("eventfd for the hook socket: ") + std::strerror(errno));
  }
  std::unique_ptr<HookServer> server(new HookServer(socket_path, fd, wake));
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

HookServer::~HookServer() {
  Stop();
  close(listen_fd_);
  close(wake_fd_);
  unlink(socket_path_.c_str());
}

std::string HookServer::Register(std::shared_ptr<Voter> voter) {
  std::string token = RandomToken();
  std::lock_guard<std::mutex> lock(mu_);
  voters_[token] = std::move(voter);
  return token;
}

void HookServer::Unregister(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  voters_.erase(token);
}

void HookServer::Stop() {
  if (stop_.exchange(true)) return;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Connection> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Requests still reading or writing end at once; a vote in flight ends
    // with its call (Voter::Cancel).
    for (Connection& c : connections_) shutdown(c.fd, SHUT_RDWR);
    connections.swap(connections_);
  }
  for (Connection& c : connections) c.thread.join();
}

void HookServer::AcceptLoop() {
  while (!stop_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      log::Error("hook socket: poll failed; hooks can no longer vote", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0 || stop_.load()) return;
    if (fds[0].revents == 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ReapConnections();
    std::lock_guard<std::mutex> lock(mu_);
    Connection& c = connections_.emplace_back();
    c.fd = fd;
    c.thread = std::thread([this, &c] {
      Serve(c.fd);
      c.done.store(true);
    });
  }
}

void HookServer::ReapConnections() {
  std::list<Connection> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->done.load()) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  for (Connection& c : finished) c.thread.join();
}

void HookServer::Serve(int fd) {
  std::string header;
  char c;
  // The request line is short; byte by byte keeps the payload in the socket.
  while (header.size() < 512) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (c == '\n') {
      std::string answer = Answer(header, fd);
      (void)WriteAll(fd, answer + "\n");
      break;
    }
    header.push_back(c);
  }
  close(fd);
}

std::string HookServer::Answer(const std::string& header, int fd) {
  std::istringstream in(header);
  std::string verb, token, phase_name;
  size_t length = 0;
  in >> verb >> token;
  std::shared_ptr<Voter> voter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = voters_.find(token);
    if (it != voters_.end()) voter = it->second;
  }
  const std::string error(hook::kAnswerError);
  if (voter == nullptr)
    return error + " unknown hook token: the call that ran this git command has ended, or the hook ran outside "
                   "the node";
  if (verb == hook::kStop) {
    Status st = voter->Stop();
    return st.ok() ? std::string(hook::kAnswerOk) : error + " " + OneLine(st.message());
  }
  if (verb != hook::kVote || !(in >> phase_name >> length))
    return error + " malformed request \"" + OneLine(header) + "\" (a hook program of another version?)";
  VotePhase phase;
  if (phase_name == hook::kPrepared) phase = gitaly::VoteTransactionRequest::PREPARED_PHASE;
  else if (phase_name == hook::kCommitted) phase = gitaly::VoteTransactionRequest::COMMITTED_PHASE;
  else if (phase_name == hook::kSynchronized) phase = gitaly::VoteTransactionRequest::SYNCHRONIZED_PHASE;
  else return error + " unknown phase \"" + OneLine(phase_name) + "\"";
  if (length > hook::kMaxPayload)
    return error + " a vote on " + std::to_string(length) + " bytes is more than the node takes (" +
           std::to_string(hook::kMaxPayload) + ")";
  std::string payload(length, '\0');
  size_t got = 0;
  while (got < length) {
    ssize_t n = read(fd, payload.data() + got, length - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return error + " the hook sent fewer bytes than it announced";
    got += static_cast<size_t>(n);
  }
  Status st = voter->Vote(Sha1(payload), phase);
  if (st.ok()) return std::string(hook::kAnswerCommit);
  if (IsStopped(st)) return std::string(hook::kAnswerStop);
  if (IsAborted(st)) return std::string(hook::kAnswerAbort);
  return error + " " + OneLine(st.message());
}

}  // namespace praefect::storagenode
