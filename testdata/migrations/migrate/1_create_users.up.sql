-- Several statements in one migration: a table, an index and seed rows.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX users_created_at ON users (created_at);
INSERT INTO users (name) VALUES ('alice'), ('bob');
INSERT INTO users (name) VALUES ('carol');
