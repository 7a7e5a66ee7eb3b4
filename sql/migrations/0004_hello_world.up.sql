-- The table `praefect check`'s "database read/write" check reads and writes
-- in a transaction it rolls back (Praefect's 20200109161404_hello_world).
-- Never holds rows. Expand only: older praefects do not know it.
CREATE TABLE IF NOT EXISTS hello_world (id integer);
