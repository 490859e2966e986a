-- Fraud flags scoped to the evidence: every rule counts each client's own
-- traffic, and a flag refuses (under `enforce`) only the requests of the
-- client it names, so one client cannot get another's end users refused.
-- A rule that sees the gateway as a whole (several clients pumping one
-- prefix together) raises one flag per contributing client.

-- A flag raised before this version named one client for every client's
-- traffic: dropped here, raised again per client at the detector's next
-- count (`OTP_FRAUD_CHECK_SECONDS`).
delete from fraud_flags;

alter table fraud_flags
    drop constraint fraud_flags_pkey,
    drop constraint fraud_flags_rule_check,
    -- What operators name a flag by (`otp-service fraud block --from-flag`).
    add column id bigint generated always as identity unique,
    add primary key (rule, scope, key, client_id),
    add constraint fraud_flags_rule_check check (
        rule in ('unverified_day', 'low_conversion_hour', 'ip_countries', 'unverified_day_all_clients'));

comment on column fraud_flags.client_id is
    'The client whose own traffic raised the flag: under enforce, only its requests are refused.';

-- Countries and end users' networks blocked by operators for every client
-- (`otp-service fraud block --country | --ip | --from-flag`): refused
-- whatever the fraud mode, as a blocked prefix is; an allowed prefix is
-- still never refused. Blocked prefixes stay in `fraud_prefixes`.
create table fraud_blocks (
    scope text not null check (scope in ('country', 'ip')),
    -- An ISO 3166 country (`BO`), or a network as the rules count it (an
    -- IPv4 address, or an IPv6 /64: `2001:db8:1:2::/64`).
    key text not null check (scope <> 'country' or key ~ '^[A-Z]{2}$'),
    -- The end of the block (null: until removed).
    until timestamptz,
    created_at timestamptz not null default now(),
    primary key (scope, key)
);

create trigger fraud_blocks_changed after insert or update or delete or truncate on fraud_blocks
    for each statement execute function notify_clients_changed();
