DROP TABLE storage_cleanups;
