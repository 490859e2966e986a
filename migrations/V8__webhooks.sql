-- Webhooks: each client's endpoint, and the events it is told of, written by
-- triggers in the transaction that makes the change (an outbox of events).

-- The signing secret is sealed like a message body (under the pepper): the
-- database alone cannot sign an `approved` that never happened. During a
-- rotation the previous secret signs too, until `webhook_previous_until`.
alter table clients
    add column webhook_url text,
    add column webhook_secret_sealed bytea,
    add column webhook_previous_secret_sealed bytea,
    add column webhook_previous_until timestamptz,
    -- Failing since (the first failure after the last success); a day of it disables.
    add column webhook_failing_since timestamptz,
    add column webhook_disabled_at timestamptz,
    add constraint clients_webhook_has_secret check (webhook_url is null or webhook_secret_sealed is not null);

-- Client changes are told to every replica (V7), but now that the webhook
-- worker writes to `clients` (failing since, disabled), only a statement that
-- changes a row may tell: per row, so an update of no row says nothing.
drop trigger clients_changed on clients;
create trigger clients_changed after insert or update or delete on clients
    for each row execute function notify_clients_changed();
create trigger clients_truncated after truncate on clients
    for each statement execute function notify_clients_changed();

create table webhook_events (
    -- `webhook-id` is `msg_` and this id: stable across retries.
    id uuid primary key,
    client_id uuid not null references clients (id) on delete cascade,
    -- No reference: the retention sweep may delete the verification first.
    verification_id uuid not null,
    type text not null check (type in ('verification.sent', 'verification.delivery_failed',
        'verification.approved', 'verification.expired', 'verification.max_attempts_reached',
        'verification.canceled')),
    -- The order per verification.
    seq bigserial not null,
    occurred_at timestamptz not null default clock_timestamp(),
    -- The body, made at the first attempt and sent as is at every retry.
    payload text,
    status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default clock_timestamp(),
    leased_until timestamptz,
    last_status integer,
    last_error text,
    delivered_at timestamptz
);

-- The head of each verification's pending events, found without a scan.
create index webhook_events_pending on webhook_events (verification_id, seq) where status = 'pending';
create index webhook_events_due on webhook_events (next_attempt_at) where status = 'pending';
create index webhook_events_client on webhook_events (client_id, occurred_at desc);
-- `record_webhook_event`'s question: has this verification had this event yet?
create index webhook_events_verification_type on webhook_events (verification_id, type);
create index webhook_events_finished on webhook_events (occurred_at) where status <> 'pending';

-- Records an event for a client whose endpoint is set and enabled. Each type
-- at most once per verification, except a send and a failed delivery (each resend has its own).
create function record_webhook_event(p_client uuid, p_verification uuid, p_type text)
returns void language plpgsql as $$
begin
    if not exists (select 1 from clients where id = p_client
                   and webhook_url is not null and webhook_disabled_at is null) then
        return;
    end if;
    if p_type not in ('verification.sent', 'verification.delivery_failed') and exists (
        select 1 from webhook_events where verification_id = p_verification and type = p_type) then
        return;
    end if;
    insert into webhook_events (id, client_id, verification_id, type)
    values (gen_random_uuid(), p_client, p_verification, p_type);
end $$;

create function webhook_verification_ended() returns trigger language plpgsql as $$
begin
    if new.status = 'approved' then
        perform record_webhook_event(new.client_id, new.id, 'verification.approved');
    elsif new.status = 'canceled' then
        perform record_webhook_event(new.client_id, new.id, 'verification.canceled');
    elsif new.status = 'max_attempts_reached' then
        perform record_webhook_event(new.client_id, new.id, 'verification.max_attempts_reached');
    -- A locked verification's later expiry tells nothing new.
    elsif new.status = 'expired' and old.failed_attempts < old.max_attempts then
        perform record_webhook_event(new.client_id, new.id, 'verification.expired');
    end if;
    return null;
end $$;

create trigger webhook_verification_ended after update of status on verifications
    for each row when (old.status = 'pending' and new.status <> 'pending')
    execute function webhook_verification_ended();

-- A message sent (or, for a test number, stored as sent), or given up. One
-- given up because its verification ended first (`canceled`) tells nothing:
-- that end has its own event.
create function webhook_message_settled() returns trigger language plpgsql as $$
begin
    if new.status = 'sent' then
        perform record_webhook_event(new.client_id, new.verification_id, 'verification.sent');
    elsif new.status = 'failed' and new.failure is distinct from 'canceled' then
        perform record_webhook_event(new.client_id, new.verification_id, 'verification.delivery_failed');
    end if;
    return null;
end $$;

create trigger webhook_message_settled after update of status on outbox_messages
    for each row when (old.status = 'queued' and new.status in ('sent', 'failed'))
    execute function webhook_message_settled();
create trigger webhook_message_stored_sent after insert on outbox_messages
    for each row when (new.status = 'sent')
    execute function webhook_message_settled();

-- Every replica's webhook worker looks at once.
create function notify_webhook_event() returns trigger language plpgsql as $$
begin
    perform pg_notify('otp_webhook_events', '');
    return null;
end $$;

create trigger webhook_events_recorded after insert on webhook_events
    for each statement execute function notify_webhook_event();
