-- +goose Up
CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    amount     INTEGER NOT NULL
);
-- +goose StatementBegin
CREATE TRIGGER ledger_apply AFTER INSERT ON ledger
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
END;
-- +goose StatementEnd
INSERT INTO ledger (account_id, amount) SELECT id, 5 FROM accounts;
PRAGMA user_version = 3;

-- +goose Down
DROP TRIGGER ledger_apply;
DROP TABLE ledger;
PRAGMA user_version = 0;
