-- 003: the audit of relayed messages: who sent which message type to which device, the
-- outcome (the relay's vocabulary) and the latency. Written by iotd in batches ([relay] audit).
-- Only two secondary indexes: every index is paid on each of up to 100k inserts a second, and
-- the queries (iotctl audit) narrow by time or by device; the other filters scan that range.
CREATE TABLE relay_audit (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at TIMESTAMP(3) NOT NULL,
    tenant VARCHAR(64) NOT NULL,
    sender VARCHAR(128) NOT NULL,
    device VARCHAR(64) NOT NULL,
    message VARCHAR(64) NOT NULL,
    outcome ENUM('ok', 'denied', 'unknown_type', 'bad_args', 'offline', 'busy', 'timeout',
                 'error', 'internal') NOT NULL,
    latency_us INT UNSIGNED NULL,
    KEY relay_audit_at (at),
    KEY relay_audit_device (device, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
