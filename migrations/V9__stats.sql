-- Conversion stats (GET /stats, GET /admin/stats). Every fact is written as
-- an event by a trigger, in the transaction that made it happen, so the
-- figures cannot drift from the verifications; the sweeper folds the events
-- into one row per (client, day, country) and the stats read both. Events
-- are only ever inserted: the request path never waits on a shared counter
-- row, and no two transactions can deadlock over one. Neither table refers
-- to a verification, so the figures outlive the retention sweep.

-- The ISO 3166-1 alpha-2 code of the number's country, as the service read
-- it (null for rows from before this, or a number without one).
alter table verifications
    add column country text,
    -- A client's test number: left out of the stats (reviewers and the
    -- client's own tests are not its users).
    add column test_number boolean not null default false;

-- The bucket of an approval's time from request: to the second under ten
-- minutes, to the minute under a day, and one bucket for a day or more. The
-- value is the bucket's lower end, in seconds.
create function stats_approval_bucket(seconds double precision) returns integer
language sql immutable strict as $$
    select case
        when seconds < 600 then greatest(floor(seconds), 0)::integer
        when seconds < 86400 then (floor(seconds / 60) * 60)::integer
        else 86400
    end
$$;

create table stats_events (
    id bigint generated always as identity primary key,
    client_id uuid not null,
    -- The verification's creation day, UTC: every figure counts toward the
    -- day its verification was requested.
    day date not null,
    country text not null,
    kind text not null check (kind in ('requested', 'sent', 'approved', 'expired', 'locked', 'delivery_failed')),
    -- `outbox_messages.failure` of a delivery_failed event.
    failure text,
    approval_bucket integer
);
create index stats_events_client_day on stats_events (client_id, day);

create table verification_stats (
    client_id uuid not null references clients (id),
    day date not null,
    country text not null,
    requested bigint not null default 0,
    sent bigint not null default 0,
    approved bigint not null default 0,
    expired bigint not null default 0,
    locked bigint not null default 0,
    failed_phone_rejected bigint not null default 0,
    failed_session_ended bigint not null default 0,
    failed_unauthorized bigint not null default 0,
    failed_expired_before_send bigint not null default 0,
    failed_canceled bigint not null default 0,
    failed_unreadable bigint not null default 0,
    primary key (client_id, day, country)
);
create index verification_stats_day on verification_stats (day);

-- Approvals by time from request (stats_approval_bucket): what the median is
-- read from, once the verifications themselves are gone.
create table approval_time_stats (
    client_id uuid not null references clients (id),
    day date not null,
    country text not null,
    bucket integer not null,
    approvals bigint not null,
    primary key (client_id, day, country, bucket)
);
create index approval_time_stats_day on approval_time_stats (day);

create function stats_verification_created() returns trigger language plpgsql as $$
begin
    insert into stats_events (client_id, day, country, kind)
    values (new.client_id, (new.created_at at time zone 'UTC')::date, coalesce(new.country, 'unknown'),
            'requested');
    return null;
end $$;

create trigger stats_verification_created after insert on verifications
    for each row when (not new.test_number)
    execute function stats_verification_created();

-- An outcome is counted when the verification stops being pending, never
-- before: a verification whose last wrong code used up its attempts may
-- still be approved by an attempt reserved before it (a right code gives its
-- attempt back), so it is `locked` only once it ends without approval.
create function stats_verification_finished() returns trigger language plpgsql as $$
declare
    outcome text := case
        when new.status = 'approved' then 'approved'
        when new.status in ('expired', 'max_attempts_reached', 'failed')
             and new.failed_attempts >= new.max_attempts then 'locked'
        when new.status = 'expired' then 'expired'
    end;
begin
    if outcome is not null then
        insert into stats_events (client_id, day, country, kind, approval_bucket)
        values (new.client_id, (new.created_at at time zone 'UTC')::date, coalesce(new.country, 'unknown'),
                outcome,
                case when outcome = 'approved'
                     then stats_approval_bucket(extract(epoch from new.verified_at - new.created_at)) end);
    end if;
    return null;
end $$;

create trigger stats_verification_finished after update of status on verifications
    for each row when (old.status = 'pending' and new.status <> 'pending' and not new.test_number)
    execute function stats_verification_finished();

-- A verification is `sent` at its first message that went out, however many
-- resends followed. Only one message of a verification is ever queued (a
-- resend supersedes the last under the verification's lock), so two cannot
-- be marked sent at once and each sees the other's mark.
create function stats_message_finished() returns trigger language plpgsql as $$
declare
    v record;
begin
    select client_id, created_at, country, test_number into v
    from verifications where id = new.verification_id;
    if not found or v.test_number then
        return null;
    end if;
    if new.status = 'failed' then
        insert into stats_events (client_id, day, country, kind, failure)
        values (v.client_id, (v.created_at at time zone 'UTC')::date, coalesce(v.country, 'unknown'),
                'delivery_failed', new.failure);
    elsif not exists (select 1 from outbox_messages
                      where verification_id = new.verification_id and status = 'sent' and id <> new.id) then
        insert into stats_events (client_id, day, country, kind)
        values (v.client_id, (v.created_at at time zone 'UTC')::date, coalesce(v.country, 'unknown'), 'sent');
    end if;
    return null;
end $$;

create trigger stats_message_finished after update of status on outbox_messages
    for each row when (old.status = 'queued' and new.status in ('sent', 'failed'))
    execute function stats_message_finished();

-- What already happened to the verifications still kept, so the figures of
-- the retention period are whole from the start (country `unknown`: only the
-- service can read a number's country). Test numbers' messages said so.
-- `alter table` above holds both tables until this commits, so nothing is
-- counted twice or missed between this and the triggers.
update verifications v set test_number = true
where exists (select 1 from outbox_messages m
              where m.verification_id = v.id and m.last_error = 'test number: nothing was sent');

insert into verification_stats
    (client_id, day, country, requested, sent, approved, expired, locked,
     failed_phone_rejected, failed_session_ended, failed_unauthorized, failed_expired_before_send,
     failed_canceled, failed_unreadable)
select v.client_id, (v.created_at at time zone 'UTC')::date, 'unknown',
       count(*),
       count(*) filter (where exists (select 1 from outbox_messages m
                                      where m.verification_id = v.id and m.status = 'sent')),
       count(*) filter (where v.status = 'approved'),
       count(*) filter (where v.status = 'expired' and v.failed_attempts < v.max_attempts),
       count(*) filter (where v.status in ('expired', 'max_attempts_reached', 'failed')
                          and v.failed_attempts >= v.max_attempts),
       sum(f.phone_rejected), sum(f.session_ended), sum(f.unauthorized), sum(f.expired_before_send),
       sum(f.canceled), sum(f.unreadable)
from verifications v
cross join lateral (
    select count(*) filter (where m.failure = 'phone_rejected') as phone_rejected,
           count(*) filter (where m.failure = 'session_ended') as session_ended,
           count(*) filter (where m.failure = 'unauthorized') as unauthorized,
           count(*) filter (where m.failure = 'expired_before_send') as expired_before_send,
           count(*) filter (where m.failure = 'canceled') as canceled,
           count(*) filter (where m.failure = 'unreadable') as unreadable
    from outbox_messages m where m.verification_id = v.id and m.status = 'failed'
) f
where not v.test_number
group by 1, 2;

insert into approval_time_stats (client_id, day, country, bucket, approvals)
select client_id, (created_at at time zone 'UTC')::date, 'unknown',
       stats_approval_bucket(extract(epoch from verified_at - created_at)), count(*)
from verifications
where status = 'approved' and verified_at is not null and not test_number
group by 1, 2, 4;
