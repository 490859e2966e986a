-- `serve --dev` must never run against a real database: it marks what it
-- makes, and refuses a database that holds anything it did not make.
alter table clients add column made_by_dev boolean not null default false;
alter table verifications add column made_by_dev boolean not null default false;

-- A database that only ever held the `dev` client was a --dev database.
update clients set made_by_dev = true
where name = 'dev' and not exists (select 1 from clients where name <> 'dev');
update verifications set made_by_dev = true
where client_id in (select id from clients where made_by_dev);
