-- address_key() (sql/48) told an ASCII address by a regular expression, and then lower-cased it
-- through unicode_lower(), which tests the same expression again: since sql/49 every recipient's
-- index entry is that key, and the two matches cost about 0.7 µs more of PostgreSQL's CPU per
-- recipient enqueued than the index of lower(email) before it (500-row inserts, alternated). In
-- UTF-8 a text is ASCII exactly when it has as many characters as bytes, a count with no pattern to
-- run, and an ASCII text's key is what unicode_lower() gives it: lower() in the "C" collation
-- (sql/47). Every key stays the same, so the index of sql/49 needs no rebuild. In another encoding
-- (SQL_ASCII, which counts bytes as characters) the function stays as sql/48 wrote it.
do $migration$
begin
  if current_setting('server_encoding') = 'UTF8' then
    execute format($create$
      create or replace function address_key(email text) returns text
      language sql immutable parallel safe as $body$
        select case when octet_length(email) = length(email) then lower(email collate "C") else %1$I.idna_address_key(email) end
      $body$$create$, current_schema());
  end if;
end
$migration$;
