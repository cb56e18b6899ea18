-- unicode_lower() (sql/44) lower-cased an ASCII text with translate() over the 26 capitals, which
-- compares each character with each of them: about 10 µs per address, 5 to 8 times what lower()
-- took before it, and the claim keys every recipient it reads (address_key(), for its suppression).
-- lower() in the "C" collation changes A to Z and nothing else in every database, whatever its
-- locale and provider (PostgreSQL hard-wires it for C): the same text, at lower()'s cost. lower()
-- in the database's own collation would not do: a Turkish one (ICU's tr, libc's tr_TR) makes I ı.
-- Only that branch changes; the table stays as sql/44 wrote it into the function.
do $migration$
declare
  body text := (select prosrc from pg_proc where oid = 'unicode_lower(text)'::regprocedure);
  ascii_branch constant text := $$translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')$$;
begin
  if position(ascii_branch in body) = 0 then
    raise exception 'unicode_lower() has no ASCII branch as sql/44 wrote it';
  end if;
  execute format('create or replace function unicode_lower(text) returns text language sql immutable parallel safe as %L',
    replace(body, ascii_branch, 'lower($1 collate "C")'));
end
$migration$;
