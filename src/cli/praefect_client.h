#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/subcommand.h"
#include "common/status_or.h"
#include "config/config.h"

// What the operator subcommands that talk to the running praefect share
// (dataloss, accept-dataloss, metadata): their configuration, the address
// they dial, and the token they sign their calls with, as Praefect's
// subCmdDial.
namespace praefect::cli {

// Loads -config for operator subcommand `name`. On failure prints
// "<timestamp> error reading config file: ..." (after the problems of an
// invalid file) and returns nullopt.
std::optional<config::Config> LoadOperatorConfig(const Invocation& inv, std::string_view name);

// The address of this praefect, for grpc++: unix:<socket_path>, else
// <listen_addr>, else <tls_listen_addr> (TLS); FAILED_PRECONDITION "no
// Praefect address configured" without any.
struct PraefectAddress {
  std::string target;
  bool tls = false;
  std::string shown;  // as the operator configured it, for messages
};
StatusOr<PraefectAddress> PraefectAddressOf(const config::Config& config);

// A connected channel to praefect, waiting up to `timeout` for the
// connection (a blocking dial). The error says where it dialed and what to
// check.
StatusOr<std::shared_ptr<grpc::Channel>> DialPraefect(const config::Config& config,
                                                      std::chrono::milliseconds timeout);

// As DialPraefect, but gives up at the first failed connection attempt
// (connection refused, no such socket) instead of retrying until `timeout`:
// for a command that has another way to do its work when no praefect
// answers (set-replication-factor).
StatusOr<std::shared_ptr<grpc::Channel>> DialPraefectOnce(const config::Config& config,
                                                          std::chrono::milliseconds timeout);

// Signs `ctx` with [auth] token (when set) and bounds it by `timeout`.
void PrepareContext(const config::Config& config, grpc::ClientContext* ctx, std::chrono::milliseconds timeout);

// "rpc error: code = InvalidArgument desc = ...", as grpc-go prints a status.
std::string GoRpcError(const grpc::Status& status);

}  // namespace praefect::cli
