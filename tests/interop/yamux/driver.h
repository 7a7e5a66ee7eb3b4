#pragma once

// A yamux::Session on a real socket, for the interoperability test with
// hashicorp/yamux (yamux_interop_test.cc): a poll loop that moves bytes
// between the socket and the session, and per stream an App that says what
// to send and checks what comes back.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "yamux/session.h"

namespace yamuxtest {

// pattern(seed) of tests/interop/yamuxpeer/main.go: xorshift64 words, little
// endian, n bytes of them.
class Pattern {
 public:
  Pattern(uint64_t seed, uint64_t n) : x_(seed * 0x9E3779B97F4A7C15ull + 1), left_(n) {}
  // Fills up to `max` bytes at `out`; returns how many.
  size_t Fill(char* out, size_t max);
  uint64_t left() const { return left_; }

 private:
  uint64_t x_;
  uint64_t left_;
  unsigned char word_[8] = {};
  size_t used_ = 8;
};

// FNV-1a, 64 bits, as Go's hash/fnv New64a.
struct Fnv1a64 {
  uint64_t h = 14695981039346656037ull;
  void Add(std::string_view bytes) {
    for (const char c : bytes) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  }
};

// What the test does with one stream. Everything is optional:
//   send:    `line` first, then `payload_size` bytes of pattern(payload_seed);
//            then FIN (close_when_sent) or RST (reset_when_sent; with
//            expect_text, only once some text came back)
//   receive: compared with pattern(expect_seed) of expect_size bytes, or
//            kept as text (expect_text), or echoed back (echo: consumed only
//            once written back, FIN after the peer's FIN)
struct App {
  std::string line;
  uint64_t payload_size = 0;
  uint64_t payload_seed = 0;
  bool close_when_sent = true;
  bool reset_when_sent = false;

  bool expect_pattern = false;
  uint64_t expect_seed = 0;
  uint64_t expect_size = 0;
  bool expect_text = false;
  bool echo = false;

  // Progress, filled by the driver.
  std::string text;         // received, with expect_text
  uint64_t received = 0;    // bytes received
  bool got_fin = false;
  bool got_reset = false;
  bool acknowledged = false;
  bool finished_sending = false;  // FIN or RST sent
  bool reset_sent = false;
  std::string error;  // the first mismatch

  // Done: reset by either side, or closed both ways.
  bool Done() const { return got_reset || reset_sent || (got_fin && finished_sending); }

 private:
  friend class Driver;
  std::unique_ptr<Pattern> source_;
  std::unique_ptr<Pattern> expected_;
  std::string out_;  // bytes to write, from out_off_
  size_t out_off_ = 0;
  uint64_t consumable_ = 0;  // received, to hand to Consume
};

class Driver : public praefect::yamux::SessionListener {
 public:
  // Takes `fd`, a connected stream socket, and writes the 11 bytes
  // "backchannel" before the session's first frame, as praefect does.
  Driver(int fd, praefect::yamux::SessionOptions options);
  ~Driver() override;

  praefect::yamux::Session& session() { return *session_; }

  // Opens a stream run by `app`; returns its id, or 0 (error() says why).
  uint32_t Open(App app);
  App& app(uint32_t id) { return apps_.at(id); }
  const std::map<uint32_t, App>& apps() const { return apps_; }

  // Streams the peer opens are echoed (App::echo). While `accept` says no,
  // they wait unaccepted (counting against the backlog).
  std::function<bool()> accept = [] { return true; };
  std::vector<uint32_t> waiting;  // opened by the peer, not accepted yet

  std::vector<uint32_t> pongs;
  std::vector<uint32_t> goaways;

  // Runs until `done` holds, the session fails, or `timeout` passes.
  // Returns "" or why it stopped early.
  std::string Run(const std::function<bool()>& done, std::chrono::seconds timeout);
  // Shuts the socket down and closes it.
  void Hangup();

  // SessionListener.
  void OnStreamOpened(uint32_t id) override;
  void OnStreamAcknowledged(uint32_t id) override;
  void OnData(uint32_t id, std::string_view bytes) override;
  void OnPeerClosed(uint32_t id) override;
  void OnStreamReset(uint32_t id) override;
  void OnPingAnswered(uint32_t ping_id) override { pongs.push_back(ping_id); }
  void OnGoAway(uint32_t code) override { goaways.push_back(code); }

 private:
  void PumpApps();
  void PumpApp(uint32_t id, App& a);
  void AcceptWaiting();
  bool output_pressure() const;
  std::string Fail(const std::string& why);

  int fd_;
  std::unique_ptr<praefect::yamux::Session> session_;
  std::map<uint32_t, App> apps_;
  std::string out_;  // bytes for the socket, from out_off_
  size_t out_off_ = 0;
  std::vector<char> in_;
  bool eof_ = false;
};

}  // namespace yamuxtest
