DROP TABLE IF EXISTS hello_world;
