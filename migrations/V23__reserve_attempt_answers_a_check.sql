-- `reserve_attempt` returns what a check's answer shows of a verification
-- (`channel`, `created_at`, `updated_at`, beside the phone and attempts it
-- returned already), so a wrong code is answered without reading the
-- verification again: `/twilio`'s VerificationCheck answers the
-- verification, `/otp/verify` only the attempts left, and both now cost the
-- same statements. It also takes an optional phone (`p_phone`): a check that
-- names a verification and its `To` reserves only when both match, in the
-- same statement, instead of reading the verification first.
--
-- The new arguments and columns change the function's signature, so the old
-- one is dropped (in this migration's transaction). A replica of the
-- previous release that is still running calls it with five arguments and
-- names the columns it reads: the default `p_phone` and the added columns
-- leave it working (its cached plan is made again). Like every migration,
-- though, it keeps an older release from starting again on this database.

drop function reserve_attempt(uuid, uuid, text, integer[], interval[]);

-- V22's `reserve_attempt`, whole (the live definition; V12 explains the
-- steps), with the phone filter on each read and the three new columns.
create function reserve_attempt(
    p_id uuid, p_client uuid, p_bucket_prefix text, p_max_hits integer[], p_spans interval[],
    p_phone text default null,
    out code_hash text, out failed_attempts integer, out max_attempts integer,
    out hit_id bigint, out refused_by integer, out retry_after double precision,
    out status text, out phone text, out expired boolean, out expires_in bigint,
    out channel text, out created_at timestamptz, out updated_at timestamptz
) language plpgsql as $$
declare
    taken record;
    attemptable boolean;
begin
    select v.phone, v.status, v.expires_at <= now(), v.failed_attempts, v.max_attempts,
           greatest(1, ceil(extract(epoch from v.expires_at - now())))::bigint,
           verification_attemptable(v.status, v.failed_attempts, v.max_attempts, v.expires_at),
           v.channel, v.created_at, v.updated_at
        into phone, status, expired, failed_attempts, max_attempts, expires_in, attemptable,
             channel, created_at, updated_at
        from verifications v
        where v.id = p_id and v.client_id = p_client and (p_phone is null or v.phone = p_phone);
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
    -- The phone never changes: the read above already matched it.
    update verifications v set failed_attempts = v.failed_attempts + 1
        where v.id = p_id and v.client_id = p_client
          and verification_attemptable(v.status, v.failed_attempts, v.max_attempts, v.expires_at)
        returning v.code_hash, v.failed_attempts, v.max_attempts, v.updated_at
        into code_hash, failed_attempts, max_attempts, updated_at;
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
