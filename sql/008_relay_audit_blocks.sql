-- 008: the relay audit is stored in blocks. A block is one row holding every audited message
-- of one sender to one device that one batch of the writer carried (up to 2,048 of them), as
-- a JSON array in body. Why: MariaDB spent about 3 µs of CPU on every row inserted, as much as
-- iotd's whole relay path, and on a machine it shares with iotd that halved the relay's
-- throughput with 16 requests in flight (measured: 85k round trips a second audited against
-- 146k without the audit). A block costs about one row's work for hundreds of messages.
--
-- Nothing about a message is lost or merged: body is [[ms_before, message, outcome,
-- latency_us], ...] in the order they were relayed, where ms_before counts back from the
-- block's at (the time of its newest message) to the message's own time. The view relay_audit
-- below expands the blocks into one row per message, with the columns relay_audit had, so
-- that SQL written for the old table still works (the old id is gone: block and seq name a
-- message now).
--
-- Partitioned by day on at like events (004) and the old table (007): retention is a DROP
-- PARTITION (iotd's maintenance, db/partitions.c). The indexes serve `iotctl audit`: newest
-- first overall, by device and by sender; outcomes lets an --outcome filter skip blocks
-- without that outcome. They are paid once per block, not per message.
CREATE TABLE relay_audit_block (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    at DATETIME(3) NOT NULL,
    tenant VARCHAR(64) NOT NULL,
    sender VARCHAR(128) NOT NULL,
    device VARCHAR(64) NOT NULL,
    outcomes SET('ok', 'denied', 'unknown_type', 'bad_args', 'offline', 'busy', 'timeout',
                 'error', 'internal') NOT NULL,
    records SMALLINT UNSIGNED NOT NULL,
    body MEDIUMTEXT NOT NULL,
    PRIMARY KEY (id, at),
    KEY relay_audit_block_at (at),
    KEY relay_audit_block_device (device, at),
    KEY relay_audit_block_sender (sender, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
PARTITION BY RANGE COLUMNS (at) (PARTITION pmax VALUES LESS THAN (MAXVALUE));

-- The rows already audited become blocks of one, in their order; they land in pmax, and the
-- first maintenance moves them into today's partition (as 007 did). This runs at the first
-- start of the new iotd: about 120,000 rows a second on the 2-core test machine (200,000 in
-- 1.7 s), so a large audit table makes that start take minutes.
INSERT INTO relay_audit_block (at, tenant, sender, device, outcomes, records, body)
    SELECT at, tenant, sender, device, outcome, 1,
           CONCAT('[[0,', JSON_QUOTE(message), ',"', outcome, '",',
                  COALESCE(CAST(latency_us AS CHAR), 'null'), ']]')
    FROM relay_audit ORDER BY id;

DROP TABLE relay_audit;

CREATE VIEW relay_audit AS
    SELECT CAST(b.at - INTERVAL m.ms_before * 1000 MICROSECOND AS DATETIME(3)) AS at,
           b.tenant, b.sender, b.device, m.message, m.outcome, m.latency_us,
           b.id AS block, m.seq
    FROM relay_audit_block b,
         JSON_TABLE(b.body, '$[*]' COLUMNS (
             seq FOR ORDINALITY,
             ms_before INT UNSIGNED PATH '$[0]',
             message VARCHAR(64) PATH '$[1]',
             outcome VARCHAR(16) PATH '$[2]',
             latency_us INT UNSIGNED PATH '$[3]')) m;
