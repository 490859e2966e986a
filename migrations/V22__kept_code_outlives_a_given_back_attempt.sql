-- `reserve_attempt` no longer erases the kept code (`code_sealed`) when it
-- reserves the last attempt allowed: that attempt may yet be given back
-- unjudged (no hashing thread free, `503`), and the verification is then
-- waiting for its code again, which a resend must still be able to send.
-- The judged wrong attempt that locks the verification erases it instead
-- (`forget_kept_code`, src/store/verifications/resends.rs).

-- V21's `reserve_attempt`, whole (the live definition; V12 explains the
-- steps), without that erasure: V17's again.
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
