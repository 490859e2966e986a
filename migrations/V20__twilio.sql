-- The Twilio Verify compatible surface (`/twilio`). Each client has an
-- Account SID (the user name its Twilio SDK sends, with one of its API keys
-- as the password) and a Service SID (in every path), made here for the
-- clients there are and by the defaults for every client made later, and
-- kept for the client's life.
alter table clients
    add column twilio_account_sid text not null
        default 'AC' || replace(gen_random_uuid()::text, '-', '')
        constraint clients_twilio_account_sid_key unique
        constraint clients_twilio_account_sid_form check (twilio_account_sid ~ '^AC[0-9a-f]{32}$'),
    add column twilio_service_sid text not null
        default 'VA' || replace(gen_random_uuid()::text, '-', '')
        constraint clients_twilio_service_sid_key unique
        constraint clients_twilio_service_sid_form check (twilio_service_sid ~ '^VA[0-9a-f]{32}$'),
    -- Whether a request for the `sms` channel is sent over WhatsApp (null: no,
    -- it is refused).
    add column sms_as_whatsapp boolean;

-- The channel a verification was asked for through `/twilio` (its answers
-- repeat it); null for one asked through `/otp`. Every code goes over
-- WhatsApp whatever it says.
alter table verifications
    add column channel text check (channel in ('whatsapp', 'sms'));
