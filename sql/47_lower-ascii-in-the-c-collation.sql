-- unicode_lower() (sql/44) lower-cased with translate(), which compares each character with each
-- capital of its table until one matches, and a character that is no capital (most of an address)
-- with all of them: about 10 µs per ASCII address through the 26 capitals, 5 to 8 times what lower()
-- took before it, and twice the claim's cost per job for an address with one non-ASCII letter,
-- through the 1,400 of the whole table; the claim keys every recipient it reads (address_key(), for
-- its suppression). A text without a capital of the table beyond ASCII's (every ASCII text, and
-- nearly every other address: josé, рауl) now goes to lower() in the "C" collation, which changes A
-- to Z and nothing else in every database, whatever its locale and provider (PostgreSQL hard-wires
-- it for C): the same text, at lower()'s cost. lower() in the database's own collation would not do:
-- a Turkish one (ICU's tr, libc's tr_TR) makes I ı. The table stays as sql/44 wrote it.
do $migration$
declare
  body text := (select prosrc from pg_proc where oid = 'unicode_lower(text)'::regprocedure);
  tables text[] := regexp_match(body, $re$else translate\(\$1, '([^']*)', '([^']*)'\)$re$);
begin
  if tables is null or position($$translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')$$ in body) = 0 then
    raise exception 'unicode_lower() is not the function sql/44 wrote';
  end if;
  execute format($create$
    create or replace function unicode_lower(text) returns text
    language sql immutable parallel safe as $body$
      select case
        when $1 ~ '^[\x01-\x7f]*$' or $1 !~ %L then lower($1 collate "C")
        else translate($1, %L, %L)
      end
    $body$$create$, '[' || regexp_replace(tables[1], '[A-Z]', '', 'g') || ']', tables[1], tables[2]);
end
$migration$;
