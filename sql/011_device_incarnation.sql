-- 011_device_incarnation.sql - a device's sequence mark belongs to one incarnation of its name.
--
-- 010 deleted a removed device's mark with the device. That was not enough: its events still
-- in iotd's spool (acknowledged while MariaDB was away) or in a batch being written when it
-- was removed are stored later, and they raised the mark again, now for the device added
-- again under the same name, whose own events (counting from 1) were then dropped as
-- duplicates. Every device row now has an incarnation, a number that a new row never shares
-- with an earlier one (AUTO_INCREMENT; on Galera every node draws from its own offset); iotd
-- stamps each event with the incarnation of the device that sent it, and event_seq records
-- which incarnation its mark counts: an event of an earlier incarnation is stored (history is
-- by name) but neither deduplicated against nor raising the current one's mark.
ALTER TABLE devices
    ADD COLUMN incarnation BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    ADD UNIQUE KEY devices_incarnation (incarnation);
ALTER TABLE event_seq
    ADD COLUMN incarnation BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER device_id;
UPDATE event_seq JOIN devices ON devices.id = event_seq.device_id
SET event_seq.incarnation = devices.incarnation;
