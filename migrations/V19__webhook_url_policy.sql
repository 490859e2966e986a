-- Which webhook URLs the service accepts (OTP_WEBHOOK_ALLOW_HTTP,
-- OTP_WEBHOOK_ALLOW_PRIVATE), as the replica started last recorded them: the
-- command line reads it, so `clients set --webhook-url` accepts what the
-- service it works for accepts, without repeating its settings.
create table webhook_url_policy (
    only_row boolean primary key default true check (only_row),
    allow_http boolean not null,
    allow_private boolean not null,
    recorded_at timestamptz not null default now()
);
