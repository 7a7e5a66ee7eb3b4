#include "datastore/postgres_sql.h"

namespace praefect::datastore::sql {

std::string UpdateJob(std::string_view source) {
  return R"(jsonb_build_object(
    'change', 'update', 'repository_id', r.repository_id, 'virtual_storage', r.virtual_storage,
    'relative_path', r.relative_path, 'replica_path', r.replica_path,
    'source_node_storage', )" +
         std::string(source) + ", 'target_node_storage', t)";
}

// A praefect is active on a virtual storage when it tried to contact any of
// its nodes within the window; it votes for a node when its latest check of
// that node, within the window, succeeded (last_seen_active_at is set to the
// same now() as last_contact_attempt_at by a successful check). The
// database's now() throughout: the praefects' clocks may differ.
std::string HealthyCtes(std::string_view window) {
  const std::string w(window);
  return R"(active AS (
  SELECT shard_name, count(DISTINCT praefect_name) AS praefects FROM node_status
  WHERE last_contact_attempt_at >= now() - )" +
         w + R"(
  GROUP BY shard_name
), healthy AS (
  SELECT n.shard_name AS virtual_storage, n.node_name AS storage
  FROM node_status n JOIN active a USING (shard_name)
  WHERE n.last_contact_attempt_at >= now() - )" +
         w + R"(
    AND n.last_seen_active_at >= n.last_contact_attempt_at
  GROUP BY n.shard_name, n.node_name, a.praefects
  HAVING count(*) >= (a.praefects + 1) / 2
))";
}

std::string WindowParam(int n) { return "($" + std::to_string(n) + "::bigint * interval '1 millisecond')"; }

}  // namespace praefect::datastore::sql
