DROP TABLE node_status;
DROP TABLE replication_queue_job_lock;
DROP TABLE replication_queue_lock;
DROP TABLE replication_queue;
DROP TABLE repository_assignments;
DROP TABLE storage_repositories;
DROP TABLE repositories;
