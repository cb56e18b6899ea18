-- How many pauses in a row the app's webhook has had (its receiver gave no answer, or 429, 502, 503
-- or 504): each pause after a lone attempt that failed is twice the one before, up to
-- WEBHOOK_RETRY_MAX_MS, so a receiver that stays down is tried once an hour, not every 10 s for a
-- day. An answered attempt after a pause, or a new URL, sets it back to 0. A constant default adds
-- the column without rewriting the table.
alter table apps add column webhook_pauses integer not null default 0;
alter table apps add constraint apps_webhook_pauses_check check (webhook_pauses >= 0);
