DROP VIEW valid_primaries;
DROP VIEW healthy_storages;
