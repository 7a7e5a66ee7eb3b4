#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "log/log.h"

// The access log: one line per finished call, as Praefect writes it (the
// go-grpc-middleware logrus interceptor GitLab configures): "finished unary
// call with code OK" with grpc.code, grpc.method, grpc.service,
// grpc.start_time, grpc.time_ms, correlation_id and the repository's
// fields.
namespace praefect::log {

// A finished call, as the data plane reports it.
struct FinishedCall {
  std::string_view full_method;  // "/gitaly.RepositoryService/RepositoryExists"
  bool streaming = false;        // any of the three streaming shapes
  int code = 0;                  // gRPC status code
  std::string_view error;        // the status message, when code != 0
  std::chrono::system_clock::time_point start;
  std::chrono::nanoseconds duration{0};
  std::optional<std::chrono::system_clock::time_point> deadline;  // the client's grpc-timeout
  std::string_view correlation_id;  // x-gitlab-correlation-id
  std::string_view client_name;     // client_name metadata (GitLab sends it)
  // What routing learned: virtual_storage, relative_path, storage...
  const std::vector<std::pair<std::string, std::string>>* route_fields = nullptr;
};

// `[logging] access_log_level`: the level of the line for a call that ended
// with a code that is no server fault (OK, Canceled, InvalidArgument,
// NotFound, AlreadyExists, Unauthenticated). The others keep the level
// go-grpc-middleware gives them (warning for DeadlineExceeded,
// PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted,
// OutOfRange, Unavailable; error for Unknown, Unimplemented, Internal,
// DataLoss), or the configured one when that is higher. nullopt: no access
// log at all. Process-wide, changed on reload; info until set.
void SetAccessLevel(std::optional<Level> level);
std::optional<Level> AccessLevel();

// The level of the access line for `code` under `configured`.
Level AccessLineLevel(int code, Level configured);

// The message and fields of the access line. Sorted as the text format
// sorts them; exposed for tests.
std::string AccessMessage(const FinishedCall& call);
Fields AccessFields(const FinishedCall& call);

// Writes the access line of `call` to `logger`, unless the access log is
// off, the line's level is below the logger's, or the call is a successful
// health check (Gitaly's default request-method deny pattern, so that load
// balancers' probes do not flood the log).
void LogFinishedCall(const FinishedCall& call, Logger& logger = Default());

}  // namespace praefect::log
