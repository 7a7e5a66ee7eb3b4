#pragma once

// Two yamux Sessions back to back in memory, and a listener that records
// what each hears. For the tests of tests/unit/yamux.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "yamux/frame.h"
#include "yamux/session.h"

namespace praefect::yamux::testing {

// One frame's bytes.
inline std::string Frame(FrameType type, uint16_t flags, uint32_t id, uint32_t length, std::string_view payload = {}) {
  std::string out;
  AppendHeader(type, flags, id, length, &out);
  out.append(payload);
  return out;
}

// The headers of the frames in `bytes`, for checking what a session sent.
// REQUIRES: `bytes` holds whole frames.
inline std::vector<FrameHeader> Headers(std::string_view bytes) {
  std::vector<FrameHeader> out;
  while (bytes.size() >= kHeaderSize) {
    const FrameHeader h = DecodeHeader(bytes.data());
    out.push_back(h);
    size_t size = kHeaderSize;
    if (h.type == static_cast<uint8_t>(FrameType::kData)) size += h.length;
    bytes.remove_prefix(std::min(size, bytes.size()));
  }
  return out;
}

// Deterministic bytes: `n` of them from `seed`.
inline std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// Records events as short lines ("opened 1", "data 1 5", "fin 1", "reset 3",
// "acked 1", "writable 1", "pong 0", "goaway 0", "error ...") and the data
// of each stream. With auto_accept it accepts every stream it hears of; with
// auto_consume it consumes data as it arrives.
class Recorder : public SessionListener {
 public:
  Session* session = nullptr;
  bool auto_accept = true;
  bool auto_consume = true;
  std::vector<std::string> events;
  std::map<uint32_t, std::string> data;
  std::vector<uint32_t> writable;

  void OnStreamOpened(uint32_t id) override {
    events.push_back("opened " + std::to_string(id));
    if (auto_accept) Check(session->Accept(id));
  }
  void OnStreamAcknowledged(uint32_t id) override { events.push_back("acked " + std::to_string(id)); }
  void OnData(uint32_t id, std::string_view bytes) override {
    data[id].append(bytes);
    if (auto_consume) Check(session->Consume(id, bytes.size()));
  }
  void OnPeerClosed(uint32_t id) override { events.push_back("fin " + std::to_string(id)); }
  void OnStreamReset(uint32_t id) override { events.push_back("reset " + std::to_string(id)); }
  void OnWritable(uint32_t id) override {
    events.push_back("writable " + std::to_string(id));
    writable.push_back(id);
  }
  void OnPingAnswered(uint32_t ping_id) override { events.push_back("pong " + std::to_string(ping_id)); }
  void OnGoAway(uint32_t code) override { events.push_back("goaway " + std::to_string(code)); }
  void OnError(const Status& error) override { events.push_back("error " + error.message()); }

  bool Heard(const std::string& event) const {
    for (const auto& e : events) {
      if (e == event) return true;
    }
    return false;
  }

  // Failures inside callbacks are kept for the test to check.
  std::vector<Status> callback_errors;

 private:
  void Check(const Status& st) {
    if (!st.ok()) callback_errors.push_back(st);
  }
};

// A client and a server session wired back to back.
struct Pair {
  Recorder client_events;
  Recorder server_events;
  std::unique_ptr<Session> client;
  std::unique_ptr<Session> server;
  // Everything that went over the wire each way, when `capture` is set.
  bool capture = false;
  std::string client_sent;
  std::string server_sent;
  // Bytes are fed in pieces of at most this size (1: byte by byte).
  size_t piece = 1 << 20;

  explicit Pair(SessionOptions client_options = {}, SessionOptions server_options = {}) {
    client_options.role = Role::kClient;
    server_options.role = Role::kServer;
    client_options.peer = "server";
    server_options.peer = "client";
    client = std::move(Session::Create(client_options, &client_events)).value();
    server = std::move(Session::Create(server_options, &server_events)).value();
    client_events.session = client.get();
    server_events.session = server.get();
  }

  // Moves bytes both ways until neither side has any to send. Returns false
  // if a Receive failed.
  bool Pump() {
    bool ok = true;
    for (;;) {
      std::string c2s, s2c;
      client->TakeOutput(&c2s);
      server->TakeOutput(&s2c);
      if (c2s.empty() && s2c.empty()) return ok;
      if (capture) {
        client_sent += c2s;
        server_sent += s2c;
      }
      ok = Feed(*server, c2s) && ok;
      ok = Feed(*client, s2c) && ok;
    }
  }

  bool Feed(Session& to, std::string_view bytes) const {
    while (!bytes.empty()) {
      const size_t n = std::min(piece, bytes.size());
      if (!to.Receive(bytes.substr(0, n)).ok()) return false;
      bytes.remove_prefix(n);
    }
    return true;
  }
};

}  // namespace praefect::yamux::testing
