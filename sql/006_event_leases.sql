-- 006_event_leases.sql - periodic events as leases.
--
-- An event message type may name the two commands of the same catalogue that start and stop
-- it on the device (e.g. temperature: start_temp / stop_temp). iotd sends the start once when
-- the first client asks for the event and the stop when the last one leaves (or its lease
-- expires), so two people watching one device no longer toggle each other's stream off.
-- Names, not references: a command may be removed and added again; iotd checks that the
-- command exists when the lease starts.
ALTER TABLE message_types
    ADD COLUMN start_message VARCHAR(64) NULL AFTER timeout_ms,
    ADD COLUMN stop_message VARCHAR(64) NULL AFTER start_message;
