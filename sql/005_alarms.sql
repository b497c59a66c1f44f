-- 005: alarm rules and alarms (iotd/alarm).
--
-- alarm_rules: per tenant, named (unique per tenant). A rule watches one event name of the
-- devices in its scope: 'device' (target = device id), 'group' (target = device group name),
-- 'type' (target = device type name) or 'tenant' (target NULL: every device). The target is a
-- name, not a reference: a rule whose device, group or type is removed matches nothing (and
-- one of the same name added later again). Two kinds, told apart by silence_s:
--  * threshold rule (silence_s = 0): field op threshold, with hysteresis (>= 0, the margin by
--    which the value must cross back before the alarm clears; 0 for == and !=) and for_ms (how
--    long the condition must hold before the alarm is raised);
--  * silence rule (silence_s > 0): raised when a device sent no such event for silence_s
--    seconds or went offline; no field, op or threshold.
--
-- alarms: the lifecycle raised -> acknowledged -> cleared (acknowledging is optional; a cleared
-- alarm may still be acknowledged, which records who saw it and keeps it cleared). source
-- 'rule' alarms are named after their rule; source 'device' alarms after the ALARM frame. At
-- most one alarm per (device, source, name) is open: open_key is 1 while the alarm is open and
-- NULL once cleared, and NULLs never collide in a UNIQUE key. device_id has no foreign key (an
-- alarm outlives its device, like the audit tables); rule_id is SET NULL when the rule goes
-- (MariaDB allows no CHECK on a column with a SET NULL action, so "device alarms have no rule"
-- is kept by iotd, not by a constraint).
-- Both tables reference tenants ON DELETE RESTRICT like everything a tenant owns.
-- Times are TIMESTAMP(3) (UTC; iotd's sessions use time zone +00:00), read with UNIX_TIMESTAMP().

CREATE TABLE alarm_rules (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    name VARCHAR(64) NOT NULL,
    scope ENUM('device', 'group', 'type', 'tenant') NOT NULL,
    target VARCHAR(64) NULL,
    event VARCHAR(64) NOT NULL,
    field VARCHAR(64) NULL,
    op ENUM('>', '>=', '<', '<=', '==', '!=') NULL,
    threshold DOUBLE NULL,
    hysteresis DOUBLE NOT NULL DEFAULT 0,
    for_ms INT UNSIGNED NOT NULL DEFAULT 0,
    silence_s INT UNSIGNED NOT NULL DEFAULT 0,
    severity ENUM('info', 'warning', 'minor', 'major', 'critical') NOT NULL DEFAULT 'warning',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by VARCHAR(255) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY alarm_rules_name (tenant_id, name),
    CONSTRAINT alarm_rules_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT,
    CONSTRAINT alarm_rules_target CHECK ((scope = 'tenant') = (target IS NULL)),
    CONSTRAINT alarm_rules_kind CHECK (
        (silence_s = 0 AND field IS NOT NULL AND op IS NOT NULL AND threshold IS NOT NULL)
        OR (silence_s > 0 AND field IS NULL AND op IS NULL AND threshold IS NULL
            AND hysteresis = 0 AND for_ms = 0)),
    CONSTRAINT alarm_rules_hysteresis CHECK (hysteresis >= 0
        AND (hysteresis = 0 OR op IN ('>', '>=', '<', '<='))),
    CONSTRAINT alarm_rules_for_ms CHECK (for_ms <= 86400000),
    CONSTRAINT alarm_rules_silence_s CHECK (silence_s <= 2592000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE alarms (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    tenant_id INT UNSIGNED NOT NULL,
    device_id VARCHAR(64) NOT NULL,
    source ENUM('rule', 'device') NOT NULL,
    rule_id BIGINT UNSIGNED NULL,
    name VARCHAR(64) NOT NULL,
    severity ENUM('info', 'warning', 'minor', 'major', 'critical') NOT NULL,
    state ENUM('raised', 'acknowledged', 'cleared') NOT NULL DEFAULT 'raised',
    raised_at TIMESTAMP(3) NOT NULL,
    acked_at TIMESTAMP(3) NULL DEFAULT NULL,
    acked_by VARCHAR(255) NULL,
    cleared_at TIMESTAMP(3) NULL DEFAULT NULL,
    value VARCHAR(64) NULL,
    message VARCHAR(255) NULL,
    clear_value VARCHAR(64) NULL,
    clear_message VARCHAR(255) NULL,
    open_key TINYINT AS (IF(state = 'cleared', NULL, 1)) PERSISTENT,
    PRIMARY KEY (id),
    UNIQUE KEY alarms_open (device_id, source, name, open_key),
    KEY alarms_tenant (tenant_id, id),
    KEY alarms_rule (rule_id),
    CONSTRAINT alarms_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
        ON DELETE RESTRICT,
    CONSTRAINT alarms_rule FOREIGN KEY (rule_id) REFERENCES alarm_rules (id)
        ON DELETE SET NULL,
    CONSTRAINT alarms_cleared CHECK ((state = 'cleared') = (cleared_at IS NOT NULL)),
    CONSTRAINT alarms_acked CHECK ((acked_at IS NULL) = (acked_by IS NULL)
        AND (state <> 'acknowledged' OR acked_at IS NOT NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
