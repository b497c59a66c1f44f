-- 010_event_seq_removed_devices.sql - a device's sequence high-water mark ends with the device.
--
-- event_seq (004) keeps, per device name, the highest seq stored: the dedup that drops a
-- device's retransmissions. Removing a device left its row behind, so a device added again
-- under the same name (with a fresh firmware counter starting at 1) had its events
-- acknowledged as duplicates and dropped until its numbers passed the old mark. Since this
-- version `device remove` deletes the mark in the transaction that deletes the device (the
-- events themselves stay: history is by name and outlives the device); this deletes the marks
-- that earlier removals left.
DELETE event_seq FROM event_seq LEFT JOIN devices ON devices.id = event_seq.device_id
WHERE devices.id IS NULL;
