#include "config/config.h"

namespace praefect::config {

std::string_view LogFormatName(LogFormat format) {
  switch (format) {
    case LogFormat::kText:
      return "text";
    case LogFormat::kJson:
      return "json";
  }
  return "text";
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kFatal:
      return "fatal";
    case LogLevel::kPanic:
      return "panic";
  }
  return "info";
}

std::string_view ElectionStrategyName(ElectionStrategy strategy) {
  switch (strategy) {
    case ElectionStrategy::kPerRepository:
      return "per_repository";
    case ElectionStrategy::kSql:
      return "sql";
    case ElectionStrategy::kLocal:
      return "local";
  }
  return "per_repository";
}

namespace {

const std::string& Coalesce(const std::string& a, const std::string& b) { return a.empty() ? b : a; }

const std::string& Coalesce(const std::string& a, const std::string& b, const std::string& c) {
  return Coalesce(a, Coalesce(b, c));
}

int Coalesce(int a, int b, int c) { return a != 0 ? a : (b != 0 ? b : c); }

}  // namespace

DatabaseConnection Database::SessionConnection() const {
  DatabaseConnection c;
  c.host = Coalesce(session_pooled.host, host_no_proxy, host);
  c.port = Coalesce(session_pooled.port, port_no_proxy, port);
  c.user = Coalesce(session_pooled.user, user);
  c.password = Coalesce(session_pooled.password, password);
  c.dbname = Coalesce(session_pooled.dbname, dbname);
  c.sslmode = Coalesce(session_pooled.sslmode, sslmode);
  c.sslcert = Coalesce(session_pooled.sslcert, sslcert);
  c.sslkey = Coalesce(session_pooled.sslkey, sslkey);
  c.sslrootcert = Coalesce(session_pooled.sslrootcert, sslrootcert);
  return c;
}

const VirtualStorage* Config::FindVirtualStorage(std::string_view name) const {
  for (const VirtualStorage& vs : virtual_storages) {
    if (vs.name == name) return &vs;
  }
  return nullptr;
}

}  // namespace praefect::config
