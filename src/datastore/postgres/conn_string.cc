#include "datastore/postgres/conn_string.h"

namespace praefect::datastore::postgres {
namespace {

// libpq: values with spaces, quotes or backslashes are single-quoted, with
// \' and \\ escapes; an empty value is ''.
std::string Quote(const std::string& v) {
  bool plain = !v.empty();
  for (char ch : v) {
    if (ch == ' ' || ch == '\'' || ch == '\\' || ch == '\t' || ch == '\n') plain = false;
  }
  if (plain) return v;
  std::string out = "'";
  for (char ch : v) {
    if (ch == '\'' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "'";
}

std::string Build(const config::DatabaseConnection& c, std::chrono::milliseconds connect_timeout, bool redact) {
  std::string out;
  auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += Quote(value);
  };
  add("host", c.host);
  if (c.port != 0) add("port", std::to_string(c.port));
  add("user", c.user);
  add("password", redact && !c.password.empty() ? std::string("***") : c.password);
  add("dbname", c.dbname);
  add("sslmode", c.sslmode.empty() ? std::string("prefer") : c.sslmode);
  add("sslcert", c.sslcert);
  add("sslkey", c.sslkey);
  add("sslrootcert", c.sslrootcert);
  long long secs = (connect_timeout.count() + 999) / 1000;
  if (secs < 2) secs = 2;
  add("connect_timeout", std::to_string(secs));
  add("application_name", "praefect");
  return out;
}

}  // namespace

std::string ConnString(const config::DatabaseConnection& c, std::chrono::milliseconds connect_timeout) {
  return Build(c, connect_timeout, false);
}

std::string RedactedConnString(const config::DatabaseConnection& c, std::chrono::milliseconds connect_timeout) {
  return Build(c, connect_timeout, true);
}

}  // namespace praefect::datastore::postgres
