-- 007: the relay audit becomes a history table like events (004): partitioned by day on a
-- DATETIME(3) in UTC, so that [relay] audit_retention_days is a cheap DROP PARTITION (iotd's
-- maintenance, db/partitions.c: at the first batch, then hourly) and `iotctl audit --since`
-- prunes to the days it asks for.
--
-- The index on at alone goes: partition pruning and the primary key (newest first) serve the
-- time-range queries, and each index costs every one of up to 100k inserts a second (measured:
-- the two secondary indexes were half of MariaDB's CPU time for the audit). The index by
-- device stays, for `iotctl audit --device`.
--
-- TIMESTAMP to DATETIME converts through the session time zone, which iotd sets to UTC on
-- every connection. Rows already there land in pmax, and the first maintenance moves them into
-- today's partition.
ALTER TABLE relay_audit
    MODIFY at DATETIME(3) NOT NULL,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (id, at),
    DROP KEY relay_audit_at
    PARTITION BY RANGE COLUMNS (at) (PARTITION pmax VALUES LESS THAN (MAXVALUE));
