-- A resend sends the code already sent, and a waiting message says when it
-- should go out (docs/api.md, "Resends send the same code").

-- The code of a pending verification, sealed as outbox texts are (bound to
-- the verification's id), so that a resend can send it again without making
-- a new one: only the hash is ever compared. Erased by the statement that
-- ends the verification (approved, canceled, expired, failed, replaced once
-- locked), and by the attempt that locks it (`reserve_attempt` below). Null
-- for a test number, whose code is the fixed one, and for a verification
-- made before this column: a resend of such a one makes a new code.
alter table verifications add column code_sealed bytea;

-- When admission expected the message to go out, at its place in the fair
-- order (the figure it was admitted by), and which of its verification's
-- sends it is (1 for the first). Both null for messages queued before.
alter table outbox_messages
    add column estimated_send_at timestamptz,
    add column send_number integer;

-- Which send a `verification.sent` or `verification.delivery_failed` event
-- tells of (the message's `send_number`); null for the other events.
alter table webhook_events add column send_number integer;

-- V17's `reserve_attempt`, whole (the live definition; V12 explains the
-- steps), with one change: the attempt after which the verification no
-- longer waits for its code (the last wrong code allowed) erases the sealed
-- code with the count. A right code reserved before it still approves: the
-- hash is what is compared.
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
    update verifications v set failed_attempts = v.failed_attempts + 1,
            code_sealed = case when verification_waiting(v.status, v.failed_attempts + 1, v.max_attempts)
                               then v.code_sealed end
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
