DROP INDEX IF EXISTS replication_queue_repository_id_index;
DROP TABLE IF EXISTS reconciliation_lease;
