DROP INDEX users_email;
ALTER TABLE users DROP COLUMN email;
PRAGMA user_version = 0;
