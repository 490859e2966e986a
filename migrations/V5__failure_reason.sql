-- Why a message was given up, typed; `last_error` stays free text for operators.
alter table outbox_messages add column failure text check (failure in
    ('phone_rejected', 'session_ended', 'unauthorized', 'expired_before_send', 'canceled', 'unreadable'));

-- Until now the reason of a failed message was its `last_error`.
update outbox_messages set failure = last_error
where status = 'failed'
  and last_error in ('phone_rejected', 'session_ended', 'unauthorized', 'expired_before_send', 'canceled', 'unreadable');

-- From now on every failed message says why. Not checked against older rows:
-- a failed message is never written again, and one whose text said no known
-- reason is not made to say one.
alter table outbox_messages add constraint outbox_messages_failed_has_failure
    check (status <> 'failed' or failure is not null) not valid;
