#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "http2/proxy_call.h"

namespace praefect::server {

// The data plane's call observer in `praefect serve`: hands each call to
// every observer in `observers` (the gRPC server metrics), then writes its
// access log line (log::LogFinishedCall). `streaming` says whether a
// method is one of the streaming shapes ("finished streaming call").
std::unique_ptr<http2::CallObserver> NewAccessObserver(std::vector<http2::CallObserver*> observers,
                                                       std::function<bool(std::string_view method)> streaming);

}  // namespace praefect::server
