#pragma once

#include <memory>
#include <string>

#include "common/status_or.h"
#include "http2/connection.h"
#include "http2/tls_context.h"
#include "http2/tls_filter.h"

// TLS on the data plane's connections: a TlsFilter as a Connection's
// SecureLayer.
namespace praefect::http2 {

// A SecureLayer for one accepted connection of a TLS listener.
std::unique_ptr<SecureLayer> ServerTls(std::shared_ptr<const TlsContext> context, std::string peer);
// A SecureLayer for one connection to a tls:// node, verifying its
// certificate for `server_name`.
std::unique_ptr<SecureLayer> ClientTls(std::shared_ptr<const TlsContext> context, std::string server_name,
                                       std::string peer);

}  // namespace praefect::http2
