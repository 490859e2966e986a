-- The mark of a database `serve --dev` has taken as its own. While it is
-- there, every client made in it, by `--dev` itself, by its admin API or by
-- the command line pointed at it, is marked as made by `--dev`, so the next
-- `serve --dev` still takes the database. A start of the real service takes
-- the mark away: from then on the database is a real one.
create table dev_database (
    only_row boolean primary key default true check (only_row),
    since timestamptz not null default now()
);
