-- Sliding-window limits shared by every replica: one row per counted event
-- (a send to a phone, a failed code for a phone, a request from an IP or a
-- client), kept only as long as the longest window (an hour).
create table limit_hits (
    id bigserial primary key,
    bucket text not null,
    at timestamptz not null
);

create index limit_hits_bucket_at on limit_hits (bucket, at);

-- Takes one slot of `bucket` if fewer than `max_hits` were taken in the last
-- `span`. Returns the new hit's id (to give it back later) or null, and when
-- refused, the seconds until the oldest hit that matters leaves the window.
-- The advisory lock makes count-then-insert atomic per bucket across
-- replicas; inside a larger transaction it is held to that transaction's end,
-- so a slot taken there only counts if the transaction commits.
create function take_limit_slot(
    p_bucket text, p_max_hits integer, p_span interval,
    out hit_id bigint, out retry_after double precision
) language plpgsql as $$
declare
    t timestamptz;
    taken integer;
    frees_at timestamptz;
begin
    -- The two-key form keeps these locks apart from single-key advisory locks
    -- (the migration lock).
    perform pg_advisory_xact_lock(1330925568, hashtext(p_bucket));
    -- Real time, not the transaction's start: the lock may have been waited for.
    t := clock_timestamp();
    delete from limit_hits where bucket = p_bucket and at <= t - p_span;
    select count(*) into taken from limit_hits where bucket = p_bucket;
    if taken < p_max_hits then
        insert into limit_hits (bucket, at) values (p_bucket, t) returning id into hit_id;
        retry_after := 0;
        return;
    end if;
    -- With `taken` hits and room for `max_hits`, a slot frees when the
    -- (taken - max_hits + 1)-th oldest hit leaves the window.
    select at into frees_at from limit_hits where bucket = p_bucket
        order by at offset taken - p_max_hits limit 1;
    hit_id := null;
    retry_after := extract(epoch from frees_at + p_span - t);
end $$;

-- The seconds until `bucket` has a free slot (0 when it has one now), taking
-- nothing: the cheap look made before work that a full window would waste.
create function limit_slot_wait(p_bucket text, p_max_hits integer, p_span interval)
returns double precision language sql volatile as $$
    select coalesce(
        (select extract(epoch from at + p_span - clock_timestamp())::double precision
         from limit_hits
         where bucket = p_bucket and at > clock_timestamp() - p_span
         order by at desc offset p_max_hits - 1 limit 1),
        0)
$$;

-- Idempotency-Key: the first answer to a (client, key), replayed to retries
-- for 24 hours. `status` is null while the first request is still running;
-- `claim` names that request, so that only it can answer or release the key.
create table idempotency_keys (
    client_id uuid not null references clients (id),
    key text not null,
    request_hash bytea not null,
    claim uuid not null,
    status smallint,
    response jsonb,
    created_at timestamptz not null default now(),
    primary key (client_id, key)
);

create index idempotency_keys_created on idempotency_keys (created_at);
