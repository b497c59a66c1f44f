-- 002: the connection history of devices: every connect, disconnect and authentication
-- failure, with the peer address, transport and reason. device_id is what the peer claimed
-- (it may name no registered device), so there is no foreign key. iotd writes it in batches
-- and deletes rows older than 30 days.
CREATE TABLE device_connections (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at TIMESTAMP(3) NOT NULL,
    device_id VARCHAR(128) NOT NULL,
    event ENUM('connect', 'disconnect', 'auth_failure') NOT NULL,
    address VARCHAR(64) NOT NULL,
    transport ENUM('tcp', 'tls') NOT NULL,
    reason VARCHAR(128) NOT NULL,
    KEY device_connections_device (device_id, at),
    KEY device_connections_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
