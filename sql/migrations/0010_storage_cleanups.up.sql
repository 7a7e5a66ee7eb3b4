-- Repository cleanup (src/reconcile/repository_cleaner.h): which storage
-- the praefects sharing this database look through for repositories the
-- database does not know, and when each was last looked through. Praefect
-- v16's table, with its columns, so a Praefect sharing the database during a
-- migration takes turns with us.
--
-- A praefect claims the storage not looked through for the longest (never
-- first) whose previous claim is not live: it sets triggered_at and keeps
-- refreshing it while it walks the storage; at the end it sets last_run and
-- clears triggered_at. A claim not refreshed for 30 s is dead (its praefect
-- died) and the storage may be claimed again.
CREATE TABLE storage_cleanups (
    virtual_storage TEXT NOT NULL,
    storage         TEXT NOT NULL,
    last_run        TIMESTAMP WITHOUT TIME ZONE,
    triggered_at    TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (virtual_storage, storage)
);
