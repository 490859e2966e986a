-- The conditions that the store's statements and the functions below share,
-- each written once, here: the store's `waiting!`, `attemptable!` and
-- `waiting_to_send!` (src/store/verifications.rs, src/store/outbox.rs) call
-- them, and so do `reserve_attempt` and `waiting_by_client`, which V12
-- wrote with copies of their own. SQL functions of one expression: the
-- planner inlines them, so a statement is planned as if the condition were
-- written in it (its literal status still picks the partial indexes).

-- Pending and not locked: a verification still waiting for its code.
create function verification_waiting(status text, failed_attempts integer, max_attempts integer)
returns boolean language sql immutable as $$
    select status = 'pending' and failed_attempts < max_attempts
$$;

-- Waiting and unexpired: a verification whose code may still be tried.
create function verification_attemptable(
    status text, failed_attempts integer, max_attempts integer, expires_at timestamptz
) returns boolean language sql stable as $$
    select verification_waiting(status, failed_attempts, max_attempts) and expires_at > now()
$$;

-- Queued and unexpired: a message still waiting to be sent.
create function message_waiting(status text, expires_at timestamptz)
returns boolean language sql stable as $$
    select status = 'queued' and expires_at > now()
$$;

-- V12's `reserve_attempt`, whole, with its condition written once (the
-- live definition; V12 explains the steps).
create or replace function reserve_attempt(
    p_id uuid, p_client uuid, p_bucket_prefix text, p_max_hits integer[], p_spans interval[],
    out code_hash text, out failed_attempts integer, out max_attempts integer,
    out hit_id bigint, out refused_by integer, out retry_after double precision,
    out status text, out phone text, out expired boolean, out expires_in bigint
) language plpgsql as $$
declare
    taken record;
    attemptable boolean;
begin
    select v.phone, v.status, v.expires_at <= now(), v.failed_attempts, v.max_attempts,
           greatest(1, ceil(extract(epoch from v.expires_at - now())))::bigint,
           verification_attemptable(v.status, v.failed_attempts, v.max_attempts, v.expires_at)
        into phone, status, expired, failed_attempts, max_attempts, expires_in, attemptable
        from verifications v where v.id = p_id and v.client_id = p_client;
    -- A verification that cannot be attempted is refused as such, before any
    -- window (a full window must not hide that it expired, say).
    if not found or not attemptable then
        return;
    end if;
    select t.hit_id, t.refused_by, t.retry_after into taken
        from take_limit_slot_in(p_bucket_prefix || phone, p_max_hits, p_spans) t;
    if taken.hit_id is null then
        status := null;
        refused_by := taken.refused_by;
        retry_after := taken.retry_after;
        return;
    end if;
    hit_id := taken.hit_id;
    -- `updated_at` is left alone: it says when a verification finished (what
    -- retention reads), and an indexed column kept unchanged lets the row be
    -- updated in place (HOT), without a new entry in each of its indexes.
    update verifications v set failed_attempts = v.failed_attempts + 1
        where v.id = p_id and v.client_id = p_client
          and verification_attemptable(v.status, v.failed_attempts, v.max_attempts, v.expires_at)
        returning v.code_hash, v.failed_attempts, v.max_attempts
        into code_hash, failed_attempts, max_attempts;
    if found then
        return;
    end if;
    delete from limit_hits where id = hit_id;
    hit_id := null;
    select v.status, v.expires_at <= now(), v.failed_attempts, v.max_attempts,
           greatest(1, ceil(extract(epoch from v.expires_at - now())))::bigint
        into status, expired, failed_attempts, max_attempts, expires_in
        from verifications v where v.id = p_id and v.client_id = p_client;
end $$;

-- V12's `waiting_by_client`, whole, with its condition written once (the
-- live definition; PL/pgSQL for the reason V12 gives).
create or replace function waiting_by_client()
returns table (client_id uuid, share integer, waiting bigint) language plpgsql volatile as $$
begin
    return query
        select m.client_id, c.share, count(*)
        from outbox_messages m join clients c on c.id = m.client_id
        where message_waiting(m.status, m.expires_at)
        group by m.client_id, c.share;
end $$;
