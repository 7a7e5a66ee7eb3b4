DROP INDEX IF EXISTS verification_leases;
