CREATE TABLE posts (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title   TEXT    NOT NULL,
    words   INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER posts_words AFTER INSERT ON posts BEGIN
    UPDATE posts SET words = length(NEW.title) - length(replace(NEW.title, ' ', '')) + 1
    WHERE id = NEW.id;
END;
INSERT INTO posts (user_id, title)
SELECT id, 'hello from ' || name FROM users ORDER BY id;
