-- +goose Up
CREATE TABLE accounts (
    id      INTEGER PRIMARY KEY,
    owner   TEXT    NOT NULL,
    balance INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX accounts_owner ON accounts (owner);

-- +goose StatementBegin
CREATE TRIGGER accounts_touch AFTER UPDATE OF balance ON accounts
BEGIN
    UPDATE accounts SET updated = updated + 1 WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER accounts_touch;
DROP TABLE accounts;
