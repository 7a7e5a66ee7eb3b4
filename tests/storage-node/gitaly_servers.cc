#include "gitaly_servers.h"

#include <openssl/evp.h>

#include "common/json.h"
#include "json_reader.h"

namespace praefect::storagenode {
namespace {

StatusOr<ServerAddress> ParseServer(JsonReader& json, const std::string& storage) {
  if (!json.Consume('{'))
    return json.Error("the value of storage \"" + storage + "\" must be an object {\"address\", \"token\"}");
  ServerAddress server;
  if (json.Consume('}')) return server;
  for (;;) {
    auto key = json.String();
    if (!key.ok()) return key.status();
    if (!json.Consume(':')) return json.Error("expected ':'");
    if (*key == "address" || *key == "token") {
      auto value = json.String();
      if (!value.ok()) return json.Error("\"" + *key + "\" of storage \"" + storage + "\" must be a string");
      (*key == "address" ? server.address : server.token) = std::move(*value);
    } else if (Status st = json.SkipValue(); !st.ok()) {
      return st;
    }
    if (json.Consume('}')) return server;
    if (!json.Consume(',')) return json.Error("expected ',' or '}'");
  }
}

}  // namespace

StatusOr<std::map<std::string, ServerAddress>> ParseGitalyServers(std::string_view header) {
  auto decoded = DecodeBase64(header, kGitalyServersMetadataKey);
  if (!decoded.ok()) return decoded.status();
  JsonReader json(*decoded, kGitalyServersMetadataKey);
  std::map<std::string, ServerAddress> servers;
  if (!json.Consume('{')) return json.Error("expected an object {\"<storage>\": {...}}");
  if (!json.Consume('}')) {
    for (;;) {
      auto storage = json.String();
      if (!storage.ok()) return storage.status();
      if (!json.Consume(':')) return json.Error("expected ':'");
      auto server = ParseServer(json, *storage);
      if (!server.ok()) return server.status();
      servers[*storage] = std::move(*server);
      if (json.Consume('}')) break;
      if (!json.Consume(',')) return json.Error("expected ',' or '}'");
    }
  }
  if (!json.AtEnd()) return json.Error("trailing data after the object");
  return servers;
}

std::string EncodeGitalyServers(const std::map<std::string, ServerAddress>& servers) {
  std::string json = "{";
  bool first = true;
  for (const auto& [storage, server] : servers) {
    if (!first) json += ",";
    first = false;
    AppendJsonString(json, storage);
    json += ":{\"address\":";
    AppendJsonString(json, server.address);
    json += ",\"token\":";
    AppendJsonString(json, server.token);
    json += "}";
  }
  json += "}";
  std::string out(4 * ((json.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(json.data()), static_cast<int>(json.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace praefect::storagenode
