-- Views for operators, with Praefect's names. praefect itself does not use
-- them: its queries take the window as a parameter (postgres_election.cc),
-- while these fix it at Praefect's default of 10 seconds.

-- The storages healthy by quorum: a praefect is active on a virtual storage
-- when it tried to contact one of its nodes within the window; it votes for
-- a node when its latest check, within the window, succeeded; a node is
-- healthy when at least half (rounded up) of the active praefects vote for it.
CREATE VIEW healthy_storages AS
WITH active AS (
    SELECT shard_name, count(DISTINCT praefect_name) AS praefects
    FROM node_status
    WHERE last_contact_attempt_at >= now() - interval '10 seconds'
    GROUP BY shard_name
)
SELECT n.shard_name AS virtual_storage, n.node_name AS storage
FROM node_status n JOIN active a USING (shard_name)
WHERE n.last_contact_attempt_at >= now() - interval '10 seconds'
  AND n.last_seen_active_at >= n.last_contact_attempt_at
GROUP BY n.shard_name, n.node_name, a.praefects
HAVING count(*) >= (a.praefects + 1) / 2;

-- The replicas that may serve as a repository's primary: healthy, at the
-- repository's latest generation, not being deleted, and assigned when any
-- such replica of the repository is assigned.
CREATE VIEW valid_primaries AS
SELECT repository_id, virtual_storage, relative_path, storage
FROM (
    SELECT r.repository_id, r.virtual_storage, r.relative_path, s.storage,
           a.storage IS NOT NULL AS assigned,
           bool_or(a.storage IS NOT NULL) OVER (PARTITION BY r.repository_id) AS any_assigned
    FROM repositories r
    JOIN storage_repositories s
      ON s.repository_id = r.repository_id AND s.generation = COALESCE(r.generation, 0)
    JOIN healthy_storages h ON h.virtual_storage = r.virtual_storage AND h.storage = s.storage
    LEFT JOIN repository_assignments a ON a.repository_id = r.repository_id AND a.storage = s.storage
    WHERE NOT EXISTS (
        SELECT 1 FROM replication_queue q
        WHERE q.state IN ('ready', 'in_progress', 'failed')
          AND q.job->>'change' = 'delete_replica'
          AND (q.job->>'repository_id')::bigint = r.repository_id
          AND q.job->>'target_node_storage' = s.storage)
) candidates
WHERE assigned OR NOT any_assigned;
