#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status_or.h"
#include "yamux/session.h"

namespace praefect::storagenode {

// A yamux session on a connected socket, driven by a thread of its own,
// with every stream joined to one end of a socketpair: whatever speaks on
// the other end (a grpc++ server or channel, through
// grpc::AddInsecureChannelFromFd / CreateInsecureChannelFromFd) talks over
// the stream as over a connection of its own. This is how both ends of
// Gitaly's backchannel (reference/transactions.md §4) are built here: the
// node in role kServer, the test's praefect in role kClient.
//
// The thread polls the socket, the socketpairs and a wake-up descriptor;
// there is no busy loop and no unbounded buffer: a stream's socketpair is
// read only while the peer's window for it is open (and while less than
// kMaxPendingOutput waits for the socket), and data received for a stream
// is acknowledged to the peer (Consume) only once written to its socketpair,
// so the yamux window bounds what waits there.
//
// Thread-safe: OpenStream and Stop may be called from any thread but the
// bridge's own.
class YamuxBridge final : private yamux::SessionListener {
 public:
  struct Options {
    yamux::SessionOptions session;
    // Written to the socket before the session's first frame (the client
    // side's "backchannel" magic).
    std::string preamble;
    // A stream the peer opened: `fd` is the socketpair end joined to it,
    // non-blocking and close-on-exec; the callee owns it. Called on the
    // bridge's thread. When unset, the peer's streams are refused (RST).
    std::function<void(int fd)> on_peer_stream;
  };

  static constexpr size_t kMaxPendingOutput = 1 << 20;

  // Takes `fd`, a connected stream socket (made non-blocking here), and
  // starts the thread. INVALID_ARGUMENT for bad session options.
  [[nodiscard]] static StatusOr<std::unique_ptr<YamuxBridge>> Start(int fd, Options options);
  // Stop().
  ~YamuxBridge() override;
  YamuxBridge(const YamuxBridge&) = delete;
  YamuxBridge& operator=(const YamuxBridge&) = delete;

  // Opens a stream and returns the socketpair end joined to it (non-blocking,
  // close-on-exec; the caller owns it). Blocks until the bridge's thread has
  // opened it; waits while the peer has not acknowledged earlier opens
  // beyond the accept backlog. UNAVAILABLE once the session ended.
  [[nodiscard]] StatusOr<int> OpenStream();

  // Ends the session: the connection and every socketpair end of the bridge
  // are closed, and the thread is joined. Idempotent.
  void Stop();

  // The connection or the session ended (the peer hung up, a protocol
  // error, Stop).
  bool ended() const { return ended_.load(); }
  // Why it ended; OK while it runs.
  Status error() const;

 private:
  // One stream: the socketpair end the bridge keeps, and what is in flight.
  struct Stream {
    int fd = -1;
    std::string to_fd;    // received from the peer, not yet written to fd (nor consumed)
    std::string from_fd;  // read from fd, not yet taken by the session
    bool fd_eof = false;  // fd gave EOF: FIN once from_fd is sent
    bool fin_sent = false;
    bool peer_fin = false;  // the peer sent FIN: fd's write side is shut once to_fd is written
    bool write_shut = false;
  };
  struct OpenRequest {
    bool done = false;
    StatusOr<int> result = Unavailable("not opened yet");
  };

  YamuxBridge(int fd, Options options);
  void Run();
  void ProcessOpenRequests();
  void FailOpenRequests(const Status& why);
  bool Flush();  // false when the socket failed
  void ReadSocket();
  void ReadStream(uint32_t id, Stream& s);
  void WriteStream(uint32_t id, Stream& s);
  void MaybeFinish(uint32_t id);
  void DropStream(uint32_t id, bool reset);
  void DispatchOpened();
  void End(Status why);
  size_t pending_output() const { return out_.size() - out_off_ + session_->output_size(); }

  // yamux::SessionListener.
  void OnStreamOpened(uint32_t id) override;
  void OnData(uint32_t id, std::string_view bytes) override;
  void OnPeerClosed(uint32_t id) override;
  void OnStreamReset(uint32_t id) override;
  void OnError(const Status& error) override;

  const int fd_;
  const int wake_fd_;
  Options options_;
  std::unique_ptr<yamux::Session> session_;
  std::thread thread_;

  // The bridge's thread only.
  std::map<uint32_t, Stream> streams_;
  std::vector<int> opened_;  // socketpair ends of the peer's new streams, for on_peer_stream
  std::string out_;          // for the socket, from out_off_
  size_t out_off_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<OpenRequest>> requests_;  // GUARDED_BY(mu_)
  Status error_;                                       // GUARDED_BY(mu_)
  bool stop_ = false;                                  // GUARDED_BY(mu_)
  std::atomic<bool> ended_{false};
};

}  // namespace praefect::storagenode
