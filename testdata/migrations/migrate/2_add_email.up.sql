-- ALTER TABLE, a data migration reading the table, and the schema version
-- recorded in the database header as well.
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET email = name || '@example.com';
CREATE UNIQUE INDEX users_email ON users (email);
PRAGMA user_version = 2;
