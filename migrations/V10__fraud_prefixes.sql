-- Number prefixes operators allow or block by hand (`otp-service fraud`,
-- `/admin/fraud`): a blocked prefix is refused whatever the fraud mode; an
-- allowed one is never refused for suspected fraud. The longest matching
-- prefix decides. Replicas hold the list in memory with the clients and
-- hear of a change on the clients' channel.
create table fraud_prefixes (
    -- E.164 digits, without `+`: `59177`.
    prefix text primary key check (prefix ~ '^[1-9][0-9]{0,14}$'),
    action text not null check (action in ('allow', 'block')),
    -- The end of a block (null: until removed); allows have none.
    until timestamptz check (action = 'block' or until is null),
    created_at timestamptz not null default now()
);

create trigger fraud_prefixes_changed after insert or update or delete or truncate on fraud_prefixes
    for each statement execute function notify_clients_changed();
