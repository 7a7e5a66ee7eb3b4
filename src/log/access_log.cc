#include "log/access_log.h"

#include <atomic>
#include <cstdio>
#include <unistd.h>

#include "common/status.h"

namespace praefect::log {
namespace {

// -1: off; otherwise a Level.
std::atomic<int> access_level{static_cast<int>(Level::kInfo)};

constexpr std::string_view kHealthCheck = "/grpc.health.v1.Health/Check";

// go-grpc-middleware's logrus DefaultCodeToLevel.
Level DefaultLevel(int code) {
  switch (static_cast<StatusCode>(code)) {
    case StatusCode::kOk:
    case StatusCode::kCancelled:
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kUnauthenticated: return Level::kInfo;
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kPermissionDenied:
    case StatusCode::kResourceExhausted:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnavailable: return Level::kWarn;
    case StatusCode::kUnknown:
    case StatusCode::kUnimplemented:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return Level::kError;
  }
  return Level::kError;
}

// grpc.time_ms as go-grpc-middleware computes it (whole microseconds, in
// milliseconds) and Go prints it: "0.125", "12", "1500.5".
std::string Milliseconds(std::chrono::nanoseconds d) {
  const long long us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", us / 1000, us % 1000);
  std::string out(buf);
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

}  // namespace

void SetAccessLevel(std::optional<Level> level) {
  access_level.store(level ? static_cast<int>(*level) : -1, std::memory_order_relaxed);
}

std::optional<Level> AccessLevel() {
  const int v = access_level.load(std::memory_order_relaxed);
  if (v < 0) return std::nullopt;
  return static_cast<Level>(v);
}

Level AccessLineLevel(int code, Level configured) {
  const Level level = DefaultLevel(code);
  if (level == Level::kInfo) return configured;
  return configured > level ? configured : level;
}

std::string AccessMessage(const FinishedCall& call) {
  return std::string(call.streaming ? "finished streaming call with code " : "finished unary call with code ") +
         GoCodeName(call.code);
}

Fields AccessFields(const FinishedCall& call) {
  // "/gitaly.RepositoryService/RepositoryExists": grpc.service is what is
  // between the slashes, grpc.method what follows the last.
  std::string_view full = call.full_method;
  std::string_view service;
  std::string_view method = full;
  if (const size_t slash = full.rfind('/'); slash != std::string_view::npos) {
    method = full.substr(slash + 1);
    service = full.substr(0, slash);
    if (!service.empty() && service.front() == '/') service.remove_prefix(1);
  }
  Fields fields;
  fields.reserve(16 + (call.route_fields ? call.route_fields->size() : 0));
  fields.emplace_back("grpc.code", GoCodeName(call.code));
  fields.emplace_back("grpc.method", method);
  fields.emplace_back("grpc.service", service);
  fields.emplace_back("grpc.request.fullMethod", full);
  fields.emplace_back("grpc.start_time", FormatTime(call.start));
  Field ms("grpc.time_ms", Milliseconds(call.duration));
  ms.kind = Field::Kind::kNumber;
  fields.push_back(std::move(ms));
  if (call.deadline) fields.emplace_back("grpc.request.deadline", FormatTime(*call.deadline));
  if (!call.correlation_id.empty()) fields.emplace_back("correlation_id", call.correlation_id);
  if (!call.client_name.empty()) fields.emplace_back("grpc.meta.client_name", call.client_name);
  if (call.code != 0) fields.emplace_back("error", call.error);
  fields.emplace_back("pid", static_cast<long long>(::getpid()));
  fields.emplace_back("span.kind", "server");
  fields.emplace_back("system", "grpc");
  if (call.route_fields != nullptr) {
    for (const auto& [key, value] : *call.route_fields) fields.emplace_back(key, value);
  }
  return fields;
}

void LogFinishedCall(const FinishedCall& call, Logger& logger) {
  const std::optional<Level> configured = AccessLevel();
  if (!configured) return;
  if (call.code == 0 && call.full_method == kHealthCheck) return;
  const Level level = AccessLineLevel(call.code, *configured);
  if (!logger.Enabled(level)) return;
  logger.Log(level, AccessMessage(call), AccessFields(call));
}

}  // namespace praefect::log
