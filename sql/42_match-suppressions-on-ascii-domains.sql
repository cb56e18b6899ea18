-- Suppressions match an address whatever form its domain is written in. Recipients of one message
-- compare with their domain in ASCII (IDNA A-labels, domain/email-address.ts: addressKey), but a
-- suppression stored for bob@bücher.example did not stop a send to bob@xn--bcher-kva.example, nor
-- the reverse: rows were keyed by lower(email) alone. address_key() is that key in SQL, the one
-- every writer and reader of suppressions uses: lower-cased, each non-ASCII domain label
-- NFKC-normalised and Punycode-encoded (RFC 3492) with its xn-- prefix. An ASCII address (nearly
-- all) is only lower-cased, inline, without the PL/pgSQL call.

-- RFC 3492 §6.3: the Punycode of one label (a string of code points).
create function punycode_label(label text) returns text
language plpgsql immutable strict parallel safe as $$
declare
  points int[] := array(select ascii(c) from regexp_split_to_table(label, '') as c);
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
  first boolean;
begin
  foreach p in array points loop
    if p < 128 then
      output := output || chr(p);
    end if;
  end loop;
  b := length(output);
  h := b;
  if b > 0 then
    output := output || '-';
  end if;
  while h < cardinality(points) loop
    select min(x) into m from unnest(points) as x where x >= n;
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
        first := h = b;
        delta := case when first then delta / 700 else delta / 2 end;
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
end;
$$;

create function punycode_digit(d bigint) returns text
language sql immutable strict parallel safe as $$
  select case when d < 26 then chr(97 + d::int) else chr(22 + d::int) end
$$;

-- The address's key when it holds a non-ASCII character (address_key decides).
create function idna_address_key(email text) returns text
language sql immutable strict parallel safe as $$
  select lower(substring(email from '^(.*)@')) || '@' || (
    select string_agg(case when label ~ '^[\x01-\x7f]*$' then label else 'xn--' || punycode_label(label) end, '.' order by position)
    from regexp_split_to_table(lower(normalize(substring(email from '@([^@]*)$'), nfkc)), '\.') with ordinality as labels(label, position)
  )
$$;

-- Not strict: so that the planner inlines it into each query (an ASCII address costs a lower()).
create function address_key(email text) returns text
language sql immutable parallel safe as $$
  select case when email ~ '^[\x01-\x7f]*$' then lower(email) else idna_address_key(email) end
$$;

-- The rows stored before: one per app and key (the oldest, with its reason and detail), under its
-- key. Only an address with a non-ASCII character or an A-label can have another form.
with keyed as (
  select app_id, email, row_number() over (partition by app_id, address_key(email) order by created_at, email) as rank
  from suppressions
  where email !~ '^[\x01-\x7f]*$' or email ~ '[@.]xn--'
)
delete from suppressions s
using keyed
where s.app_id = keyed.app_id and s.email = keyed.email and keyed.rank > 1;

update suppressions set email = address_key(email) where email !~ '^[\x01-\x7f]*$';
