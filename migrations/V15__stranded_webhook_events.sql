-- Events left pending by an endpoint cleared or disabled before V14: no URL
-- will ever take them (a new URL hears only of what follows it), and the
-- retention sweep keeps pending rows. Given up as a clear does now, so they
-- are listed as failed and swept with the rest, phone numbers included.
update webhook_events e set status = 'failed', leased_until = null,
       last_error = 'the webhook URL was cleared'
from clients c
where e.client_id = c.id and e.status = 'pending' and c.webhook_url is null;

update webhook_events e set status = 'failed', leased_until = null,
       last_error = 'the endpoint was disabled after failing for a day'
from clients c
where e.client_id = c.id and e.status = 'pending' and c.webhook_disabled_at is not null;
