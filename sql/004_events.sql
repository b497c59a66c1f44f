-- 004_events.sql - the events and alarms devices push, stored durably by iotd's event store
-- (iotd/events/store.c), and the per-device high-water mark of their sequence numbers.
--
-- events is partitioned by day so that retention is a cheap DROP PARTITION instead of a huge
-- DELETE. The partition key is received_at, a DATETIME(3) in UTC (iotd binds it from its own
-- clock; DATETIME, unlike TIMESTAMP, is not converted by the session time zone), partitioned
-- by RANGE COLUMNS: the bounds are plain dates that read well in information_schema, and
-- history queries on received_at ranges prune to the days they touch. Partition pYYYYMMDD
-- holds the rows received on that day (VALUES LESS THAN the next day); pmax catches whatever
-- is beyond the newest day. iotd's maintenance (event_partitions_maintain, at start and every
-- hour) splits pmax into the days from today to a few days ahead and drops the days older than
-- the retention; the partitions below only seed that.
--
-- No foreign keys (partitioned InnoDB tables cannot have them, and history must outlive the
-- rows it names): tenant and device_id are names. The tenant is its name, not tenants.id, so
-- history stays readable after a tenant is removed and the writer needs no lookup per event.
-- The primary key includes the partition column, as MariaDB requires. Indexes serve the
-- history queries (iotctl events): by device and time, by tenant and time, by tenant, name
-- and time; every index is paid on each insert, so there are no others.
-- fields is a JSON object of the event's key=value fields, values as JSON strings.
CREATE TABLE events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    received_at DATETIME(3) NOT NULL,
    tenant VARCHAR(64) NOT NULL,
    device_id VARCHAR(64) NOT NULL,
    seq INT UNSIGNED NOT NULL,
    kind ENUM('event', 'alarm') NOT NULL,
    name VARCHAR(64) NOT NULL,
    fields JSON NOT NULL,
    PRIMARY KEY (id, received_at),
    KEY events_device (device_id, received_at),
    KEY events_tenant (tenant, received_at),
    KEY events_tenant_name (tenant, name, received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY RANGE COLUMNS (received_at) (
    PARTITION p20261124 VALUES LESS THAN ('2026-11-25 00:00:00'),
    PARTITION p20261125 VALUES LESS THAN ('2026-11-26 00:00:00'),
    PARTITION p20261126 VALUES LESS THAN ('2026-11-27 00:00:00'),
    PARTITION pmax VALUES LESS THAN (MAXVALUE)
);

-- The dedup contract: a device's sequence numbers strictly increase over its lifetime, so an
-- event whose seq is <= last_seq of its device was stored before (a retransmission). The row
-- is updated in the same transaction as the batch that stores the events, so a crash between
-- the commit and the ACK cannot store a retransmission twice.
CREATE TABLE event_seq (
    device_id VARCHAR(64) NOT NULL,
    last_seq INT UNSIGNED NOT NULL,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (device_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
