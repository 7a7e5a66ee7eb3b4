-- praefect's metadata, with the table and column names of GitLab's Praefect
-- so that operators' SQL keeps working.

-- One row per repository of a virtual storage. replica_path is where its
-- replicas live on the nodes (derived from repository_id); "primary" is the
-- storage elected for writes; generation counts the writes it took.
CREATE TABLE repositories (
    repository_id   BIGSERIAL PRIMARY KEY,
    virtual_storage TEXT NOT NULL,
    relative_path   TEXT NOT NULL,
    replica_path    TEXT NOT NULL,
    "primary"       TEXT,
    generation      BIGINT,
    CONSTRAINT repositories_virtual_storage_relative_path_key UNIQUE (virtual_storage, relative_path),
    CONSTRAINT repositories_replica_path_key UNIQUE (replica_path)
);

-- One row per replica: the generation it holds, and background verification.
CREATE TABLE storage_repositories (
    repository_id             BIGINT NOT NULL REFERENCES repositories (repository_id) ON DELETE CASCADE,
    virtual_storage           TEXT NOT NULL,
    relative_path             TEXT NOT NULL,
    storage                   TEXT NOT NULL,
    generation                BIGINT NOT NULL,
    verified_at               TIMESTAMPTZ,
    verification_leased_until TIMESTAMPTZ,
    PRIMARY KEY (repository_id, storage)
);
CREATE INDEX storage_repositories_virtual_storage_relative_path_idx
    ON storage_repositories (virtual_storage, relative_path);
-- The verifier looks for replicas not verified recently, per storage.
CREATE INDEX verification_queue ON storage_repositories (verified_at NULLS FIRST)
    WHERE verification_leased_until IS NULL;

-- The storages assigned to hold a replica (the replication factor). No row:
-- every configured storage of the virtual storage is assigned.
CREATE TABLE repository_assignments (
    repository_id   BIGINT NOT NULL REFERENCES repositories (repository_id) ON DELETE CASCADE,
    virtual_storage TEXT NOT NULL,
    relative_path   TEXT NOT NULL,
    storage         TEXT NOT NULL,
    PRIMARY KEY (repository_id, storage)
);

-- Replication jobs. job holds change, virtual_storage, relative_path,
-- replica_path, source_node_storage, target_node_storage, params; lock_id
-- names the replica a job touches ("<virtual_storage>|<target>|<relative_path>").
CREATE TABLE replication_queue (
    id         BIGSERIAL PRIMARY KEY,
    state      TEXT NOT NULL DEFAULT 'ready'
               CONSTRAINT replication_queue_state_check
               CHECK (state IN ('ready', 'in_progress', 'completed', 'failed', 'dead', 'cancelled')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ,
    attempt    INTEGER NOT NULL DEFAULT 3,
    lock_id    TEXT,
    job        JSONB,
    meta       JSONB
);
-- Dequeue: the ready jobs of one target storage.
CREATE INDEX replication_queue_target_index
    ON replication_queue (state, (job->>'virtual_storage'), (job->>'target_node_storage'))
    WHERE state = 'ready';
-- Stale-lock recovery and acknowledgement look jobs up by lock and state.
CREATE INDEX replication_queue_lock_id_state_index ON replication_queue (lock_id, state);

-- One row per replica lock; acquired while a worker runs a job on it.
CREATE TABLE replication_queue_lock (
    id       TEXT PRIMARY KEY,
    acquired BOOLEAN NOT NULL DEFAULT FALSE
);

-- Which in-flight job holds which lock, and since when (for stale locks).
CREATE TABLE replication_queue_job_lock (
    job_id       BIGINT NOT NULL REFERENCES replication_queue (id) ON DELETE CASCADE,
    lock_id      TEXT NOT NULL REFERENCES replication_queue_lock (id) ON DELETE CASCADE,
    triggered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, lock_id)
);
CREATE INDEX replication_queue_job_lock_lock_id_index ON replication_queue_job_lock (lock_id);

-- Each praefect's view of each node's health.
CREATE TABLE node_status (
    praefect_name           TEXT NOT NULL,
    shard_name              TEXT NOT NULL,
    node_name               TEXT NOT NULL,
    last_contact_attempt_at TIMESTAMPTZ,
    last_seen_active_at     TIMESTAMPTZ,
    PRIMARY KEY (praefect_name, shard_name, node_name)
);
CREATE INDEX node_status_last_seen_active_at_index ON node_status (last_seen_active_at);
