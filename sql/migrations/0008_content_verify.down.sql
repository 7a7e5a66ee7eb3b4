DROP TABLE IF EXISTS content_verification;
