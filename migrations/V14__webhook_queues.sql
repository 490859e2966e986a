-- Webhook queues that cost the same whatever one endpoint's backlog, and
-- webhook bookkeeping that no longer empties every replica's memory.

-- The claim reads, per endpoint, the first few due events of this index and
-- no more: a dead endpoint's day of retries lies later in it, unread. It
-- replaces the index on the due time alone, which nothing reads any more.
drop index webhook_events_due;
create index webhook_events_client_due on webhook_events (client_id, next_attempt_at, seq)
    where status = 'pending';

-- An event waits behind the earlier pending events of its verification (they
-- go out in order). So that it is not due, and read by every claim, while it
-- cannot go, it is due no sooner than the latest of them; the worker moves it
-- with them when they are tried again, and to now when they are settled. A
-- due time that a race left too early costs a claim one row, never the order:
-- the claim still takes only the first pending event of each verification.
create or replace function record_webhook_event(p_client uuid, p_verification uuid, p_type text)
returns void language plpgsql as $$
declare
    behind timestamptz;
begin
    if not exists (select 1 from clients where id = p_client
                   and webhook_url is not null and webhook_disabled_at is null) then
        return;
    end if;
    if p_type not in ('verification.sent', 'verification.delivery_failed') and exists (
        select 1 from webhook_events where verification_id = p_verification and type = p_type) then
        return;
    end if;
    select max(next_attempt_at) into behind from webhook_events
        where verification_id = p_verification and status = 'pending';
    insert into webhook_events (id, client_id, verification_id, type, next_attempt_at)
    values (gen_random_uuid(), p_client, p_verification, p_type,
            greatest(clock_timestamp(), behind));
end $$;

-- Replicas drop what they hold of clients (keys, settings, test numbers,
-- prefixes, flags, cooldowns) at every notification on `otp_clients_changed`.
-- None of them holds a webhook column, and the worker writes two of those at
-- every switch of an endpoint between failing and delivering: an update that
-- changes only webhook columns tells no one. Any other column, one added
-- later included, still tells.
drop trigger clients_changed on clients;
create trigger clients_changed after insert or delete on clients
    for each row execute function notify_clients_changed();
create trigger clients_updated after update on clients
    for each row when (
        (to_jsonb(old) - array['webhook_url', 'webhook_secret_sealed', 'webhook_previous_secret_sealed',
                               'webhook_previous_until', 'webhook_failing_since', 'webhook_disabled_at'])
        is distinct from
        (to_jsonb(new) - array['webhook_url', 'webhook_secret_sealed', 'webhook_previous_secret_sealed',
                               'webhook_previous_until', 'webhook_failing_since', 'webhook_disabled_at']))
    execute function notify_clients_changed();
