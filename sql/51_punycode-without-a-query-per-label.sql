-- An address whose domain is not ASCII (user@bücher.example) still cost about 130 µs of PostgreSQL's
-- CPU per key (every recipient enqueued, for sql/49's index, and each suppression look-up), where
-- sql/50 brought an ASCII domain to about 5 µs. Measured in SQL alone (backend CPU from
-- /proc/<pid>/schedstat, alternated rounds), the cost was not the Punycode arithmetic but what
-- surrounded it:
-- - idna_address_key() split the domain into labels and joined them back with a subquery
--   (regexp_split_to_table, string_agg ordered by position), executor and sort each time: most of it;
-- - idna_domain() (about 16 µs): its inlined unicode_lower() normalised the domain three times over
--   (once for each use of its argument), and the table of letters UTS #46 maps besides (Cherokee and
--   others) was run through translate() for every domain, 96 letters for each character;
-- - punycode_label() read its code points and their minimum through queries, and each digit through
--   punycode_digit(), an SQL function not inlined either (a CASE is not strict): 3 µs a digit.
-- Now the labels are an array (string_to_array), the domain is mapped step by step in PL/pgSQL (5 µs)
-- with the letters' table only for a domain holding one of them, the Punycode loops read an array, and
-- punycode_digit() is one strict expression, inlined. About 15 µs for user@bücher.example. The
-- local part is cut out once (unicode_lower() inlined read its argument, a regular expression, three
-- times): josé@example.com 6 → 4 µs.
-- The keys are the same for every input (checked side by side with the functions of sql/48 and 50:
-- every BMP code point in a one-character label, inside labels and around hyphens and dots, every
-- higher code point alone and inside a label, 200,000 random domains, long labels, trailing and
-- empty labels), so the index of sql/49 needs no rebuild. Only for a UTF8 database: jetpost refuses
-- any other at start (db/migrate.ts), and none got past sql/44 before.
create or replace function punycode_digit(d bigint) returns text
language sql immutable strict parallel safe as $$
  select substr('abcdefghijklmnopqrstuvwxyz0123456789', d::int + 1, 1)
$$;

do $migration$
declare
  from_letters text;
  to_letters text;
begin
  -- sql/48's table of the letters UTS #46 maps besides, made as sql/48 made it (not read back from
  -- its function, so that this migration can run again over its own).
  select 'ͅᲀᲁᲂᲃᲄᲅᲆᲇᲈ' || string_agg(chr(small), '' order by small), 'ιвдосттъѣꙋ' || string_agg(chr(capital), '' order by small)
  into from_letters, to_letters
  from (
    select 43888 + n as small, 5024 + n as capital from generate_series(0, 79) as n
    union all
    select 5112 + n, 5104 + n from generate_series(0, 5) as n
  ) as cherokee;
  -- sql/48's mapping, one step at a time: unicode_lower() inlined on a variable reads it once.
  execute format($create$
    create or replace function idna_domain(domain text) returns text
    language plpgsql immutable strict parallel safe
    set search_path from current as $body$
    declare
      mapped text := normalize(replace(normalize(translate(domain, 'ϲ𝛓𝜍𝝇𝞁𝞻', 'σσσσσσ'), nfkc), 'ẞ', 'ss'), nfd);
    begin
      mapped := unicode_lower(mapped);
      if mapped ~ %1$L then
        mapped := translate(mapped, %2$L, %3$L);
      end if;
      return normalize(mapped, nfc);
    end
    $body$$create$, '[' || from_letters || ']', from_letters, to_letters);

  -- RFC 3492 §6.3 as sql/42 wrote it, its code points and their least one read by loops.
  create or replace function punycode_label(label text) returns text
  language plpgsql immutable strict parallel safe
  set search_path from current as $body$
  declare
    points int[] := '{}';
    output text := '';
    n int := 128;
    delta bigint := 0;
    bias int := 72;
    h int;
    b int;
    m int;
    q bigint;
    k int;
    t int;
    p int;
    c text;
  begin
    foreach c in array string_to_array(label, null) loop
      p := ascii(c);
      points := points || p;
      if p < 128 then
        output := output || c;
      end if;
    end loop;
    b := length(output);
    h := b;
    if b > 0 then
      output := output || '-';
    end if;
    while h < cardinality(points) loop
      m := null; -- the least code point not yet encoded
      foreach p in array points loop
        if p >= n and (m is null or p < m) then
          m := p;
        end if;
      end loop;
      delta := delta + (m - n)::bigint * (h + 1);
      n := m;
      foreach p in array points loop
        if p < n then
          delta := delta + 1;
        elsif p = n then
          q := delta;
          k := 36;
          loop
            t := case when k <= bias then 1 when k >= bias + 26 then 26 else k - bias end;
            exit when q < t;
            output := output || punycode_digit(t + (q - t) % (36 - t));
            q := (q - t) / (36 - t);
            k := k + 36;
          end loop;
          output := output || punycode_digit(q);
          -- adapt(delta, h + 1, h = b)
          delta := case when h = b then delta / 700 else delta / 2 end;
          delta := delta + delta / (h + 1);
          k := 0;
          while delta > 455 loop
            delta := delta / 35;
            k := k + 36;
          end loop;
          bias := k + (36 * delta) / (delta + 38);
          delta := 0;
          h := h + 1;
        end if;
      end loop;
      delta := delta + 1;
      n := n + 1;
    end loop;
    return output;
  end
  $body$;

  -- As sql/50, with the labels in an array (an empty one, 'a..b' or a final dot, kept as sql/42 did).
  create or replace function idna_address_key(email text) returns text
  language plpgsql immutable strict parallel safe
  set search_path from current as $body$
  declare
    domain text := substring(email from '@([^@]*)$');
    local_part text := substring(email from '^(.*)@');
    labels text[];
  begin
    if octet_length(domain) = length(domain) then
      return unicode_lower(local_part) || '@' || lower(domain collate "C");
    end if;
    labels := string_to_array(idna_domain(domain), '.');
    for i in 1 .. coalesce(cardinality(labels), 0) loop -- none without an @: no key, as before
      if octet_length(labels[i]) <> length(labels[i]) then
        labels[i] := 'xn--' || punycode_label(labels[i]);
      end if;
    end loop;
    return unicode_lower(local_part) || '@' || array_to_string(labels, '.');
  end
  $body$;
end
$migration$;
