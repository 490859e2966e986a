-- Calling applications. The API key itself is never stored: only its SHA-256,
-- which is enough for a random 256-bit key (no dictionary to guess from).
create table clients (
    id uuid primary key,
    name text not null unique,
    key_hash bytea not null unique,
    requests_per_minute integer check (requests_per_minute > 0),
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

create table verifications (
    id uuid primary key,
    client_id uuid not null references clients (id),
    phone text not null,
    purpose text not null,
    locale text not null,
    status text not null check (status in
        ('pending', 'approved', 'canceled', 'expired', 'max_attempts_reached', 'failed')),
    -- argon2id PHC string of the current code, made with the server's pepper.
    code_hash text not null,
    failed_attempts integer not null default 0,
    max_attempts integer not null,
    sends integer not null default 1,
    last_sent_at timestamptz not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    verified_at timestamptz
);

-- One pending verification per (client, phone, purpose): a second request is a resend.
create unique index verifications_one_pending
    on verifications (client_id, phone, purpose) where status = 'pending';
create index verifications_phone_created on verifications (phone, created_at);

-- Transactional outbox: written in the same transaction as its verification.
create table outbox_messages (
    id uuid primary key,
    verification_id uuid not null references verifications (id) on delete cascade,
    phone_digits text not null,
    -- The text carries the code: sealed (ChaCha20-Poly1305, nonce first) while
    -- the message waits, erased once it is sent or given up.
    body_sealed bytea,
    status text not null check (status in ('queued', 'sent', 'failed', 'superseded')),
    -- Sends tried (for the backoff), and claims made: each claim's number is its
    -- token, and only ever grows, so a sender that lost its lease can't act.
    attempts integer not null default 0,
    claims integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    leased_until timestamptz,
    expires_at timestamptz not null,
    last_error text,
    provider_message_id text,
    created_at timestamptz not null default now(),
    sent_at timestamptz
);

create index outbox_messages_due on outbox_messages (next_attempt_at) where status = 'queued';
create index outbox_messages_verification on outbox_messages (verification_id, created_at);

-- Gateway keys, known by a fingerprint (never the key). Their state is shared
-- by every replica, so a key that one replica took out of service stays out.
create table senders (
    id text primary key,
    state text not null default 'ok' check (state in ('ok', 'session_ended', 'unauthorized')),
    -- An answer to a send started before this must not take the key out again.
    resumed_at timestamptz,
    resting_until timestamptz,
    last_error text,
    updated_at timestamptz not null default now()
);

-- One row per message handed to a key: the sliding window behind the per-key
-- rate limit, counted across every replica.
create table sender_sends (
    id bigserial primary key,
    sender_id text not null references senders (id),
    sent_at timestamptz not null
);

create index sender_sends_window on sender_sends (sender_id, sent_at);
