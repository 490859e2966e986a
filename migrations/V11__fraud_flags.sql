-- Pumping detection: what the rules count by, and the flags they raise.

-- The calling code and the next three digits (`591696`), and the end user's
-- network (an IPv4 address, or an IPv6 /64) when the client gave one.
alter table verifications
    add column prefix text,
    add column end_user_network text;
create index verifications_created on verifications (created_at);
create index verifications_prefix_verified on verifications (prefix, verified_at) where status = 'approved';
create index verifications_country_verified on verifications (country, verified_at) where status = 'approved';

-- The current flags. A flag raised or cleared is told on the clients'
-- channel (replicas hold the flags with the clients); the detector's
-- updates of a standing flag's figures are not (memory is 5 s old at most).
create table fraud_flags (
    rule text not null check (rule in ('unverified_day', 'low_conversion_hour', 'ip_countries')),
    scope text not null check (scope in ('country', 'prefix', 'ip')),
    key text not null,
    country text not null,
    -- The client with the most traffic of the flagged kind.
    client_id uuid not null references clients (id) on delete cascade,
    -- What the rule counted, and the bound it passed.
    counted bigint not null,
    threshold double precision not null,
    flagged_at timestamptz not null default now(),
    -- When the window would clear, were nothing more sent.
    until timestamptz not null,
    primary key (rule, scope, key)
);

create trigger fraud_flags_changed after insert or delete or truncate on fraud_flags
    for each statement execute function notify_clients_changed();
