-- +goose NO TRANSACTION
-- +goose Up
CREATE VIEW account_totals AS
SELECT a.owner, a.balance, count(l.id) AS entries
FROM accounts a LEFT JOIN ledger l ON l.account_id = a.id
GROUP BY a.id;

-- +goose Down
DROP VIEW account_totals;
