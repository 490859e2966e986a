-- Steps that took a transaction of several statements, each one round trip,
-- now one statement each: the same locks in the same order, the same rows
-- written, the same answer. Every round trip costs the service and the
-- database CPU that the argon2 hashes of the same requests need.

-- A key's slots: the key's row stays locked while its windows are counted
-- and the slots are written, as before, so replicas can never take more than
-- `p_rate` in `p_window` seconds, nor `p_burst` in `p_burst_window`. Nothing
-- when the key is out of service or resting. What left the window is not
-- deleted here, at every take, but by the sweeper (`SENDS_KEPT`): the count
-- reads the window's range of the index, whatever lies before it.
create function take_sender_slots(
    p_sender text, p_wanted integer, p_rate bigint, p_burst bigint,
    p_window double precision, p_burst_window double precision
) returns setof bigint language plpgsql as $$
declare
    usable boolean;
    recent bigint;
    recent_burst bigint;
    free bigint;
begin
    select state = 'ok' and (resting_until is null or resting_until <= clock_timestamp())
        into usable from senders where id = p_sender for update;
    if usable is distinct from true then
        return;
    end if;
    select count(*),
           count(*) filter (where sent_at > clock_timestamp() - make_interval(secs => p_burst_window))
        into recent, recent_burst
        from sender_sends
        where sender_id = p_sender and sent_at > clock_timestamp() - make_interval(secs => p_window);
    free := greatest(least(p_rate - recent, p_burst - recent_burst, p_wanted), 0);
    if free = 0 then
        return;
    end if;
    return query insert into sender_sends (sender_id, sent_at)
        select p_sender, clock_timestamp() from generate_series(1, free)
        returning id;
end $$;

-- One event counted in several windows of one bucket (a phone's wrong codes
-- in the last hour and in the last day): one row, one lock, one count per
-- window, instead of a bucket per window. As `take_limit_slot`: a hit if each
-- window has fewer than its `p_max_hits` in its `p_spans`, else the first
-- window that refuses (`refused_by`, from 0) and when it frees.
create function take_limit_slot_in(
    p_bucket text, p_max_hits integer[], p_spans interval[],
    out hit_id bigint, out refused_by integer, out retry_after double precision
) language plpgsql as $$
declare
    t timestamptz;
    taken integer;
    frees_at timestamptz;
begin
    perform pg_advisory_xact_lock(1330925568, hashtext(p_bucket));
    t := clock_timestamp();
    delete from limit_hits where bucket = p_bucket and at <= t - (select max(s) from unnest(p_spans) s);
    for i in 1 .. coalesce(array_length(p_spans, 1), 0) loop
        select count(*) into taken from limit_hits where bucket = p_bucket and at > t - p_spans[i];
        if taken >= p_max_hits[i] then
            -- With `taken` hits and room for `max_hits`, a slot frees when the
            -- (taken - max_hits + 1)-th oldest hit leaves the window.
            select at into frees_at from limit_hits where bucket = p_bucket and at > t - p_spans[i]
                order by at offset taken - p_max_hits[i] limit 1;
            refused_by := i - 1;
            retry_after := extract(epoch from frees_at + p_spans[i] - t);
            return;
        end if;
    end loop;
    insert into limit_hits (bucket, at) values (p_bucket, t) returning id into hit_id;
    retry_after := 0;
end $$;

-- `take_limit_slot` (V2) is the same with one window: one body for both.
create or replace function take_limit_slot(
    p_bucket text, p_max_hits integer, p_span interval,
    out hit_id bigint, out retry_after double precision
) language plpgsql as $$
begin
    select t.hit_id, t.retry_after into hit_id, retry_after
        from take_limit_slot_in(p_bucket, array[p_max_hits], array[p_span]) t;
end $$;

-- The phone's wrong codes were kept twice, in an hourly and a daily bucket
-- (`phone-failures:` and `phone-failures-day:`); the daily one holds every
-- failure of the last day, the hourly one's too. Its rows are copied into the
-- one bucket both windows now count (`wrong-codes:`), under a name of its
-- own: a replica of the previous version, still serving during a rolling
-- deploy, goes on with its two buckets and never deletes from this one
-- (its hourly take deletes what is older than an hour from its own bucket).
-- Until those replicas stop, failures through them and through new ones are
-- counted apart. The old buckets are swept after a day, as every hit is.
insert into limit_hits (bucket, at)
    select 'wrong-codes:' || substr(bucket, length('phone-failures-day:') + 1), at
    from limit_hits where bucket like 'phone-failures-day:%';

-- A verify's reservation, in one statement: a hit of the phone's failure
-- windows (`take_limit_slot_in`, in the bucket named by the prefix and the
-- verification's phone), then the attempt on the verification if it may
-- still be attempted (the condition of `store::verifications::attemptable!`).
-- All of it or nothing:
-- - reserved: `code_hash` and the attempt's counts, and the hit taken;
-- - a window refused: `refused_by` (from 0) and the seconds until it frees;
--   nothing is taken;
-- - the verification cannot be attempted: nothing is taken, and its state
--   says why (`status` is null when there is no such verification); it is
--   looked at first, so a full window never hides it.
-- The window's lock comes before the verification's row, and no statement
-- takes them the other way round.
create function reserve_attempt(
    p_id uuid, p_client uuid, p_bucket_prefix text, p_max_hits integer[], p_spans interval[],
    out code_hash text, out failed_attempts integer, out max_attempts integer,
    out hit_id bigint, out refused_by integer, out retry_after double precision,
    out status text, out phone text, out expired boolean, out expires_in bigint
) language plpgsql as $$
declare
    taken record;
begin
    select v.phone, v.status, v.expires_at <= now(), v.failed_attempts, v.max_attempts,
           greatest(1, ceil(extract(epoch from v.expires_at - now())))::bigint
        into phone, status, expired, failed_attempts, max_attempts, expires_in
        from verifications v where v.id = p_id and v.client_id = p_client;
    -- A verification that cannot be attempted is refused as such, before any
    -- window (a full window must not hide that it expired, say).
    if not found or not (status = 'pending' and failed_attempts < max_attempts and not expired) then
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
          and v.status = 'pending' and v.failed_attempts < v.max_attempts and v.expires_at > now()
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

-- Every client's messages waiting to be sent (queued and unexpired, the
-- condition of `store::outbox::waiting_to_send!`), with its share: what
-- admission places a new message behind. Volatile, so that each call reads
-- afresh (after a lock waited for, in `lock_client_queue`).
-- PL/pgSQL rather than SQL: an SQL function that cannot be inlined is
-- planned anew at every statement that calls it (about 25 µs a call here),
-- where PL/pgSQL keeps its plan for the connection.
create function waiting_by_client()
returns table (client_id uuid, share integer, waiting bigint) language plpgsql volatile as $$
begin
    return query
        select m.client_id, c.share, count(*)
        from outbox_messages m join clients c on c.id = m.client_id
        where m.status = 'queued' and m.expires_at > now()
        group by m.client_id, c.share;
end $$;

-- Holds the client's queue until the transaction ends, then counts every
-- client's waiting messages: its requests are admitted one at a time, and
-- each reads the queues as the one before it left them.
create function lock_client_queue(p_client uuid)
returns table (client_id uuid, share integer, waiting bigint) language plpgsql volatile as $$
begin
    perform pg_advisory_xact_lock(1330925569, hashtext(p_client::text));
    return query select * from waiting_by_client();
end $$;

-- `limit_slot_wait` (V2), the same, in PL/pgSQL for the reason above: the
-- look before a request's hash calls it for both phone windows.
create or replace function limit_slot_wait(p_bucket text, p_max_hits integer, p_span interval)
returns double precision language plpgsql volatile as $$
begin
    return coalesce(
        (select extract(epoch from at + p_span - clock_timestamp())::double precision
         from limit_hits
         where bucket = p_bucket and at > clock_timestamp() - p_span
         order by at desc offset p_max_hits - 1 limit 1),
        0);
end $$;
