-- The sweeper's two questions, answered without reading the whole table: which
-- pending verifications have expired, and which finished ones are past retention
-- (a finished verification's updated_at is when it finished).
create index verifications_pending_expiry on verifications (expires_at) where status = 'pending';
create index verifications_finished_at on verifications (updated_at) where status <> 'pending';
