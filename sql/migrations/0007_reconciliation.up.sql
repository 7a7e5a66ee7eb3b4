-- Automatic reconciliation (src/reconcile/reconciler.h).
--
-- One row: which praefect runs the cluster's reconciliation round now and
-- when the latest round started. A praefect starts a round only when it
-- takes the lease (free, or expired: its holder died) and a round is due
-- (none started within [reconciliation] scheduling_interval), so several
-- praefects sharing this database reconcile once per interval between them,
-- not once each. The scheduling statements themselves still take Praefect's
-- advisory lock (pg_try_advisory_xact_lock(1)), so a Praefect v16 sharing
-- the database during a migration never schedules at the same moment.
CREATE TABLE reconciliation_lease (
    id           INTEGER PRIMARY KEY DEFAULT 1 CONSTRAINT reconciliation_lease_one_row CHECK (id = 1),
    holder       TEXT,         -- praefect_name (node_status) of the praefect running a round
    leased_until TIMESTAMPTZ,  -- the holder renews it between ranges of repositories
    started_at   TIMESTAMPTZ,  -- the latest round's start
    ended_at     TIMESTAMPTZ   -- the latest round's end (NULL while one runs)
);
INSERT INTO reconciliation_lease (id) VALUES (1);

-- The reconciler reads the active jobs of a range of repositories; without
-- this index each range would read the whole queue (and the queue is
-- largest exactly when a node was away and every replica on it is behind).
-- Removing a repository finds its jobs by it too.
CREATE INDEX replication_queue_repository_id_index
    ON replication_queue (((job->>'repository_id')::bigint))
    WHERE state NOT IN ('completed', 'dead', 'cancelled');
