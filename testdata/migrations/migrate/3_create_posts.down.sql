DROP TRIGGER posts_words;
DROP TABLE posts;
