-- Which change of a verification or of its message yields which webhook
-- event and which stats outcome is decided in Rust (`domain::transitions`),
-- and written by the statement that makes the change (`store::transitions`):
-- the triggers that decided them (V8, V9) go, with their functions. The
-- triggers that only tell replicas (`NOTIFY`) stay.
--
-- During a rolling deploy a replica of the previous version, still serving,
-- records neither events nor stats once this has run: deploy with replicas
-- of one version at a time, as for any migration that moves a rule.

drop trigger stats_verification_created on verifications;
drop trigger stats_verification_finished on verifications;
drop trigger stats_message_finished on outbox_messages;
drop trigger webhook_verification_ended on verifications;
drop trigger webhook_message_settled on outbox_messages;
drop trigger webhook_message_stored_sent on outbox_messages;

drop function stats_verification_created();
drop function stats_verification_finished();
drop function stats_message_finished();
drop function stats_approval_bucket(double precision);
drop function webhook_verification_ended();
drop function webhook_message_settled();
drop function record_webhook_event(uuid, uuid, text);

-- Every replica's webhook worker looks at once when an event is recorded.
-- Per row, not per statement: the statements that record events now insert
-- into `webhook_events` whether or not there is one to record, and a
-- statement trigger would wake every worker at every one of them. One
-- transaction's notifications on one channel are sent once.
drop trigger webhook_events_recorded on webhook_events;
create trigger webhook_events_recorded after insert on webhook_events
    for each row execute function notify_webhook_event();
