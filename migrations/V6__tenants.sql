-- Clients as tenants: each has a share of the gateway, a cap on its queue, and
-- settings of its own. A null setting means "the service's configuration".
alter table clients
    add column share integer not null default 1 check (share between 1 and 1000),
    add column max_queued integer check (max_queued between 1 and 1000000),
    add column display_name text check (length(display_name) between 1 and 64),
    add column code_length smallint check (code_length between 4 and 10),
    add column ttl_seconds integer check (ttl_seconds between 30 and 86400),
    add column max_attempts integer check (max_attempts between 1 and 100),
    add column resend_cooldown_seconds integer check (resend_cooldown_seconds between 0 and 3600),
    add column max_sends integer check (max_sends between 1 and 100),
    add column allowed_countries text[],
    add column default_locale text check (default_locale in ('es', 'en', 'pt')),
    add column template_es text check (strpos(template_es, '{code}') > 0),
    add column template_en text check (strpos(template_en, '{code}') > 0),
    add column template_pt text check (strpos(template_pt, '{code}') > 0);

-- Whose message it is: the dispatcher hands out the gateway's slots by client
-- (weighted fair queuing) and admission looks at the client's own queue.
-- `claimed_at` is when it was last handed to a sender: a client's claims in
-- the last minute are the service it has had.
alter table outbox_messages
    add column client_id uuid references clients (id),
    add column claimed_at timestamptz;
update outbox_messages m set client_id = v.client_id
from verifications v where v.id = m.verification_id;
alter table outbox_messages alter column client_id set not null;

create index outbox_messages_client_waiting on outbox_messages (client_id) where status = 'queued';
create index outbox_messages_client_claimed on outbox_messages (client_id, claimed_at);

-- Numbers a client keeps for reviewers and its own tests: a request for one
-- sends nothing, and the fixed code (argon2id, like every code) verifies it.
create table test_numbers (
    client_id uuid not null references clients (id) on delete cascade,
    phone text not null,
    code_hash text not null,
    until timestamptz not null,
    created_at timestamptz not null default now(),
    primary key (client_id, phone)
);
