-- 009: authentication failures are aggregated (issue 17): a row may count several failures
-- of one (address, device id, reason), from at to last_at, instead of one row each, so that
-- a peer failing as fast as it can connect cannot fill the disk. Other events count 1.
ALTER TABLE device_connections
    ADD COLUMN count INT UNSIGNED NOT NULL DEFAULT 1,
    ADD COLUMN last_at TIMESTAMP(3) NULL DEFAULT NULL;
