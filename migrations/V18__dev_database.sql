-- The mark of a database `serve --dev` has taken as its own. While it is
-- there, every client made in it, by `--dev` itself, by its admin API or by
-- the command line pointed at it, is marked as made by `--dev`, so the next
-- `serve --dev` still takes the database. A start of the real service takes
-- the mark away: from then on the database is a real one.
create table dev_database (
    only_row boolean primary key default true check (only_row),
    since timestamptz not null default now()
);

-- The peppers the service holds, as the last start configured them, by key
-- id (the one-way digest every hash and sealed text already names; never a
-- pepper). A command that hashes or seals with a pepper refuses one that is
-- not the service's current pepper, instead of storing what no replica can
-- check or open.
create table peppers_in_use (
    key_id bytea primary key,
    current boolean not null,
    since timestamptz not null default now()
);
create unique index peppers_in_use_one_current on peppers_in_use (current) where current;
