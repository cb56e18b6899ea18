-- Dashboard sessions ended by a logout before their expiry. A session is a signed token the browser
-- keeps (domain/dashboard-session.ts); a copy of its cookie stayed valid for up to 12 hours after
-- the logout. Every dashboard request now looks its session id up here, by the primary key, on
-- whichever replica it reaches. Each logout deletes the rows whose expiry has passed (a token past
-- its expiry is refused without a look-up): the table holds at most the logouts of the last 12 hours.
-- session_id is the token's random part (22 base64url characters): without the token's HMAC, made
-- with a key derived from ADMIN_API_KEY, it opens nothing.
create table ended_dashboard_sessions (
  session_id text not null,
  expires_at timestamptz not null,
  constraint ended_dashboard_sessions_pkey primary key (session_id)
);
