DROP INDEX users_created_at;
DROP TABLE users;
