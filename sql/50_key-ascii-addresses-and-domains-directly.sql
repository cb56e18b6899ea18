-- Since sql/49 every recipient enqueued is keyed by address_key() for its index, and each one a
-- claim reads is keyed once more (its suppression). Two costs of that key, with the same keys after:
-- - address_key() (sql/48) told an ASCII address by a regular expression, and then lower-cased it
--   through unicode_lower(), which tests the same expression again: about 0.7 µs more of
--   PostgreSQL's CPU per recipient enqueued than the index of lower(email) before it (500-row
--   inserts, alternated). In UTF-8 a text is ASCII exactly when it has as many characters as bytes,
--   a count with no pattern to run, and an ASCII text's key is what unicode_lower() gives it: lower()
--   in the "C" collation (sql/47).
-- - An address with a letter beyond ASCII (josé@example.com) goes to idna_address_key(), which took
--   100 to 400 µs per address, where lower(email) took under 1: as one SQL statement with a subquery
--   it was started as a new query for each address, aggregate and sort included. In PL/pgSQL its
--   query is planned once per session, and left out for an ASCII domain, whose A-labels are its
--   labels and which idna_domain() (UTS #46) only lower-cases: about 5 µs for josé@example.com, 50
--   for user@bücher.example.
-- The index of sql/49 needs no rebuild. In another encoding (SQL_ASCII, which counts bytes as
-- characters) both functions stay as sql/48 wrote them.
do $migration$
begin
  if current_setting('server_encoding') = 'UTF8' then
    execute format($create$
      create or replace function address_key(email text) returns text
      language sql immutable parallel safe as $body$
        select case when octet_length(email) = length(email) then lower(email collate "C") else %1$I.idna_address_key(email) end
      $body$$create$, current_schema());
    create or replace function idna_address_key(email text) returns text
    language plpgsql immutable strict parallel safe
    set search_path from current as $body$
    declare
      domain text := substring(email from '@([^@]*)$');
    begin
      if octet_length(domain) = length(domain) then
        return unicode_lower(substring(email from '^(.*)@')) || '@' || lower(domain collate "C");
      end if;
      return unicode_lower(substring(email from '^(.*)@')) || '@' || (
        select string_agg(case when label ~ '^[\x01-\x7f]*$' then label else 'xn--' || punycode_label(label) end, '.' order by position)
        from regexp_split_to_table(idna_domain(domain), '\.') with ordinality as labels(label, position)
      );
    end
    $body$;
  end if;
end
$migration$;
