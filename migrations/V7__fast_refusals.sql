-- A request-rate window as one row per window, updated in place (GCRA, the
-- generic cell rate algorithm): `tat` is the theoretical arrival time of the
-- next request. A window of `max_hits` per `span` lets a request in while
-- tat - now <= span - span / max_hits, i.e. a burst of max_hits, then one per
-- span / max_hits. No row per request, nothing to sweep: one row per client.
create table rate_cells (
    key text primary key,
    tat timestamptz not null
);

-- Takes up to `p_wanted` requests of the window at once (a replica takes a
-- small batch and spends it in memory) and says how many it got; when it got
-- none, the seconds until one fits. Meant to be called on its own, outside
-- any transaction: it turns synchronous commit off for the statement's own
-- transaction, because losing a few counts of a request-rate window in a
-- crash harms nobody (attempts and per-phone failures never come here).
create function take_rate_cells(
    p_key text, p_max_hits integer, p_span interval, p_wanted integer,
    out granted integer, out retry_after double precision
) language plpgsql as $$
declare
    -- In microseconds, as a number: a window of millions a minute has an
    -- emission interval below the microsecond an interval can hold.
    emission numeric := extract(epoch from p_span) * 1000000 / p_max_hits;
    t timestamptz := clock_timestamp();
    base timestamptz;
    fit numeric;
begin
    perform set_config('synchronous_commit', 'off', true);
    insert into rate_cells (key, tat) values (p_key, t) on conflict (key) do nothing;
    select greatest(tat, t) into base from rate_cells where key = p_key for update;
    fit := floor(extract(epoch from (t + p_span - base)) * 1000000 / emission);
    granted := least(p_wanted, greatest(fit, 0));
    if granted > 0 then
        update rate_cells
            set tat = base + make_interval(secs => (granted * emission / 1000000)::double precision)
            where key = p_key;
        retry_after := 0;
    else
        retry_after := greatest((extract(epoch from (base - t - p_span)) * 1000000 + emission) / 1000000, 0.001);
    end if;
end $$;

-- Changes to clients and their test numbers, told to every replica, which
-- keep both in memory (API keys, settings, test numbers) and drop them at
-- this. A replica that loses its listening connection stops trusting its
-- memory until it listens again.
create function notify_clients_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('otp_clients_changed', '');
    return null;
end $$;

create trigger clients_changed after insert or update or delete or truncate on clients
    for each statement execute function notify_clients_changed();
create trigger test_numbers_changed after insert or update or delete or truncate on test_numbers
    for each statement execute function notify_clients_changed();

-- A pending verification that stops being one (approved, canceled, failed,
-- expired, or its wrong codes used up), told to every replica: they remember
-- pending verifications to refuse resends inside the cooldown from memory,
-- and must not refuse a new request once the old verification is over.
create function notify_verification_finished() returns trigger language plpgsql as $$
begin
    perform pg_notify('otp_verifications_finished', '');
    return null;
end $$;

create trigger verifications_finished after update of status, failed_attempts on verifications
    for each row
    when (old.status = 'pending' and old.failed_attempts < old.max_attempts
          and (new.status <> 'pending' or new.failed_attempts >= new.max_attempts))
    execute function notify_verification_finished();
