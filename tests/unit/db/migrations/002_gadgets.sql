-- Fixture migration 2: depends on 001; its last statement has no trailing ';'.
CREATE TABLE gadget (
    id INT AUTO_INCREMENT PRIMARY KEY,
    widget_id INT NOT NULL,
    FOREIGN KEY (widget_id) REFERENCES widget (id)
) ENGINE=InnoDB;
INSERT INTO gadget (widget_id) SELECT id FROM widget WHERE name = 'first'
