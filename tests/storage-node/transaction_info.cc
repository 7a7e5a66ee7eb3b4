#include "transaction_info.h"

#include "common/base64.h"
#include "common/json.h"
#include "json_reader.h"

namespace praefect::storagenode {

StatusOr<TransactionInfo> ParseTransactionInfo(std::string_view header) {
  auto decoded = DecodeBase64(header, kTransactionMetadataKey);
  if (!decoded.ok()) return decoded.status();
  JsonReader json(*decoded, kTransactionMetadataKey);
  TransactionInfo info;
  bool has_id = false, has_node = false;
  if (!json.Consume('{')) return json.Error("expected an object {\"id\", \"node\", \"primary\"}");
  if (!json.Consume('}')) {
    for (;;) {
      auto key = json.String();
      if (!key.ok()) return key.status();
      if (!json.Consume(':')) return json.Error("expected ':'");
      if (*key == "id") {
        auto id = json.Uint64();
        if (!id.ok()) return id.status();
        info.id = *id;
        has_id = true;
      } else if (*key == "node") {
        auto node = json.String();
        if (!node.ok()) return node.status();
        info.node = std::move(*node);
        has_node = true;
      } else if (*key == "primary") {
        auto primary = json.Bool();
        if (!primary.ok()) return primary.status();
        info.primary = *primary;
      } else if (Status st = json.SkipValue(); !st.ok()) {
        return st;
      }
      if (json.Consume('}')) break;
      if (!json.Consume(',')) return json.Error("expected ',' or '}'");
    }
  }
  if (!json.AtEnd()) return json.Error("trailing data after the object");
  if (!has_id || !has_node)
    return InvalidArgument(std::string(kTransactionMetadataKey) + ": the object must have \"id\" and \"node\", got " +
                           *decoded);
  return info;
}

std::string EncodeTransactionInfo(const TransactionInfo& info) {
  std::string json = "{\"id\":" + std::to_string(info.id) + ",\"node\":";
  AppendJsonString(json, info.node);
  json += ",\"primary\":";
  json += info.primary ? "true" : "false";
  json += "}";
  return Base64Encode(json);
}

}  // namespace praefect::storagenode
