-- Fixture migration 1: a table, a multi-line statement, and text that needs escaping in C.
CREATE TABLE widget (
    id INT AUTO_INCREMENT PRIMARY KEY,
    -- a comment line inside a statement is dropped too
    name VARCHAR(64) NOT NULL UNIQUE,
    note VARCHAR(255) NOT NULL DEFAULT 'say "hi"; ok?? \\ done'
) ENGINE=InnoDB;

	INSERT INTO widget (name) VALUES ('first');
