-- 001_initial.sql - the registry: tenants, device types and their message catalogue, devices,
-- users, groups, the access map, and the audit log of administrative changes.
--
-- MariaDB 10.11, InnoDB, utf8mb4. Applied by iotd's migration runner (which owns the
-- schema_version table): statements end with ';' at the end of a line, '--' lines are comments.
--
-- Deletion policy, chosen so that a stray DELETE can never silently wipe a fleet:
--  * everything that belongs to a tenant references it ON DELETE RESTRICT; "tenant remove
--    --force" deletes a tenant's contents explicitly, child tables first (iotd/registry/admin.c);
--  * a device type referenced by a device cannot be removed (RESTRICT -> "in_use"); its catalogue
--    goes with it (CASCADE);
--  * group memberships and access rules are facts about their subject/target: they CASCADE when
--    the device, user, type or group they name is removed.
-- Tenant consistency is enforced by the schema as well as by iotd: child rows carry tenant_id
-- and reference their parents through (tenant_id, id) pairs, so a device of tenant A cannot have
-- a type of tenant B, and a rule or a membership cannot name rows of two tenants.
-- Timestamps are TIMESTAMP (stored as UTC); iotd reads them with UNIX_TIMESTAMP().

CREATE TABLE tenants (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(64) NOT NULL,
    display_name VARCHAR(255) NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY tenants_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE device_types (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    description VARCHAR(1024) NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY device_types_name (tenant_id, name),
    -- target of the (tenant_id, type_id) references below
    UNIQUE KEY device_types_tenant_id (tenant_id, id),
    CONSTRAINT device_types_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The catalogue: what each device type understands (command: sent to the device and answered;
-- event: pushed by the device). args_spec is the positional argument spec, e.g.
-- "x:int y:int colour:str?" (grammar in iotd/registry/argspec.h), '' for none.
CREATE TABLE message_types (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    type_id INT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    direction ENUM('command', 'event') NOT NULL DEFAULT 'command',
    args_spec VARCHAR(1024) NOT NULL DEFAULT '',
    timeout_ms INT UNSIGNED NOT NULL DEFAULT 5000,
    description VARCHAR(1024) NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY message_types_name (type_id, name),
    CONSTRAINT message_types_type FOREIGN KEY (type_id) REFERENCES device_types (id)
        ON DELETE CASCADE,
    CONSTRAINT message_types_timeout CHECK (timeout_ms BETWEEN 100 AND 600000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- secret: the device's 32-byte key sealed with AES-256-GCM under the server key file, bound to
-- the row by using the device id as associated data: 12-byte nonce | 32 | 16-byte tag.
CREATE TABLE devices (
    id VARCHAR(64) NOT NULL,
    tenant_id INT UNSIGNED NOT NULL,
    type_id INT UNSIGNED NOT NULL,
    display_name VARCHAR(255) NULL,
    auth ENUM('hmac', 'atecc508a') NOT NULL DEFAULT 'hmac',
    secret VARBINARY(60) NOT NULL,
    atecc_serial BINARY(9) NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_seen TIMESTAMP NULL DEFAULT NULL,
    last_address VARCHAR(64) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY devices_tenant_id (tenant_id, id),
    KEY devices_type (tenant_id, type_id),
    CONSTRAINT devices_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT,
    -- a type in use cannot be removed; (tenant_id, type_id) keeps the type in the tenant
    CONSTRAINT devices_type FOREIGN KEY (tenant_id, type_id)
        REFERENCES device_types (tenant_id, id) ON DELETE RESTRICT,
    CONSTRAINT devices_secret_len CHECK (LENGTH(secret) = 60),
    CONSTRAINT devices_atecc_serial CHECK (auth <> 'atecc508a' OR atecc_serial IS NOT NULL)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Users log in as name@tenant; password_hash is libargon2's encoded Argon2id string.
CREATE TABLE users (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    role ENUM('admin', 'operator', 'viewer') NOT NULL DEFAULT 'operator',
    password_hash VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY users_name (tenant_id, name),
    UNIQUE KEY users_tenant_id (tenant_id, id),
    CONSTRAINT users_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Groups hold either devices or users (kind); named per tenant. ("groups" is avoided as a table
-- name: it is a reserved word in MySQL 8 and a trap for anyone writing SQL by hand.)
CREATE TABLE tenant_groups (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    kind ENUM('device', 'user') NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY tenant_groups_name (tenant_id, name),
    UNIQUE KEY tenant_groups_tenant_id (tenant_id, id),
    CONSTRAINT tenant_groups_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Memberships vanish with their group or member (CASCADE); one tenant_id column shared by both
-- references keeps group and member in the same tenant.
CREATE TABLE group_devices (
    tenant_id INT UNSIGNED NOT NULL,
    group_id INT UNSIGNED NOT NULL,
    device_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (group_id, device_id),
    KEY group_devices_device (tenant_id, device_id),
    CONSTRAINT group_devices_group FOREIGN KEY (tenant_id, group_id)
        REFERENCES tenant_groups (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT group_devices_device FOREIGN KEY (tenant_id, device_id)
        REFERENCES devices (tenant_id, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE group_users (
    tenant_id INT UNSIGNED NOT NULL,
    group_id INT UNSIGNED NOT NULL,
    user_id INT UNSIGNED NOT NULL,
    PRIMARY KEY (group_id, user_id),
    KEY group_users_user (tenant_id, user_id),
    CONSTRAINT group_users_group FOREIGN KEY (tenant_id, group_id)
        REFERENCES tenant_groups (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT group_users_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The access map: "subject may send message (NULL = any) to target". Exactly one subject_* and
-- at most one target_* column is set, matching the kinds (CHECKs below); a rule vanishes with
-- the user, device, group or type it names (CASCADE). message is a name, not a reference: a rule
-- for target "any" spans every type's catalogue, and the catalogue is checked separately.
CREATE TABLE access_rules (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    subject_kind ENUM('user', 'device', 'group') NOT NULL,
    subject_user_id INT UNSIGNED NULL,
    subject_device_id VARCHAR(64) NULL,
    subject_group_id INT UNSIGNED NULL,
    target_kind ENUM('device', 'type', 'group', 'any') NOT NULL,
    target_device_id VARCHAR(64) NULL,
    target_type_id INT UNSIGNED NULL,
    target_group_id INT UNSIGNED NULL,
    message VARCHAR(64) NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by VARCHAR(255) NOT NULL,
    PRIMARY KEY (id),
    KEY access_rules_tenant (tenant_id, id),
    CONSTRAINT access_rules_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT,
    CONSTRAINT access_rules_subject_user FOREIGN KEY (tenant_id, subject_user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT access_rules_subject_device FOREIGN KEY (tenant_id, subject_device_id)
        REFERENCES devices (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT access_rules_subject_group FOREIGN KEY (tenant_id, subject_group_id)
        REFERENCES tenant_groups (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT access_rules_target_device FOREIGN KEY (tenant_id, target_device_id)
        REFERENCES devices (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT access_rules_target_type FOREIGN KEY (tenant_id, target_type_id)
        REFERENCES device_types (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT access_rules_target_group FOREIGN KEY (tenant_id, target_group_id)
        REFERENCES tenant_groups (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT access_rules_subject CHECK (
        (subject_kind = 'user') + (subject_user_id IS NOT NULL) <> 1
        AND (subject_kind = 'device') + (subject_device_id IS NOT NULL) <> 1
        AND (subject_kind = 'group') + (subject_group_id IS NOT NULL) <> 1),
    CONSTRAINT access_rules_target CHECK (
        (target_kind = 'device') + (target_device_id IS NOT NULL) <> 1
        AND (target_kind = 'type') + (target_type_id IS NOT NULL) <> 1
        AND (target_kind = 'group') + (target_group_id IS NOT NULL) <> 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every administrative change, written in the same transaction as the change itself. Names,
-- not references: the record outlives what it talks about. detail holds the command's
-- arguments without secrets or passwords.
CREATE TABLE admin_audit (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    actor VARCHAR(255) NOT NULL,
    tenant VARCHAR(64) NULL,
    action VARCHAR(64) NOT NULL,
    target VARCHAR(255) NOT NULL,
    detail JSON NULL,
    PRIMARY KEY (id),
    KEY admin_audit_tenant (tenant, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
