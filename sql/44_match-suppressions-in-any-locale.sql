-- Suppression keys no longer depend on the database's locale. address_key() (sql/42) lower-cased with
-- lower(), which follows the database's LC_CTYPE: on a database created with a plain C (or POSIX)
-- locale it changes ASCII letters only, so a suppression of JOSÉ@x.example was stored as
-- josÉ@x.example and did not stop a send to josé@x.example (nor the reverse), and a Turkish locale
-- lower-cases I to ı. unicode_lower() lower-cases every letter by Unicode's simple case mappings
-- (one letter for one: İ becomes i), from a table, whatever the locale; address_key() uses it, so
-- every writer and reader of suppressions (sends, events, the admin API) keeps one key.

-- The table: runs of capitals and their small letters, from Node's String.prototype.toLowerCase
-- (Unicode 15.1); test/http/suppression-domains.test.ts holds the two to each other. Each run is its
-- first capital, that letter's small one, how many letters, and the step between code points.
do $migration$
declare
  capitals text;
  smalls text;
begin
  select string_agg(chr(ascii(capital) + n * step), '' order by ascii(capital), n),
    string_agg(chr(ascii(small) + n * step), '' order by ascii(capital), n)
  into capitals, smalls
  from (values
    ('A', 'a', 26, 1), ('À', 'à', 23, 1), ('Ø', 'ø', 7, 1), ('Ā', 'ā', 24, 2), ('İ', 'i', 1, 1), ('Ĳ', 'ĳ', 3, 2),
    ('Ĺ', 'ĺ', 8, 2), ('Ŋ', 'ŋ', 23, 2), ('Ÿ', 'ÿ', 1, 1), ('Ź', 'ź', 3, 2), ('Ɓ', 'ɓ', 1, 1), ('Ƃ', 'ƃ', 2, 2),
    ('Ɔ', 'ɔ', 1, 1), ('Ƈ', 'ƈ', 1, 1), ('Ɖ', 'ɖ', 2, 1), ('Ƌ', 'ƌ', 1, 1), ('Ǝ', 'ǝ', 1, 1), ('Ə', 'ə', 1, 1),
    ('Ɛ', 'ɛ', 1, 1), ('Ƒ', 'ƒ', 1, 1), ('Ɠ', 'ɠ', 1, 1), ('Ɣ', 'ɣ', 1, 1), ('Ɩ', 'ɩ', 1, 1), ('Ɨ', 'ɨ', 1, 1),
    ('Ƙ', 'ƙ', 1, 1), ('Ɯ', 'ɯ', 1, 1), ('Ɲ', 'ɲ', 1, 1), ('Ɵ', 'ɵ', 1, 1), ('Ơ', 'ơ', 3, 2), ('Ʀ', 'ʀ', 1, 1),
    ('Ƨ', 'ƨ', 1, 1), ('Ʃ', 'ʃ', 1, 1), ('Ƭ', 'ƭ', 1, 1), ('Ʈ', 'ʈ', 1, 1), ('Ư', 'ư', 1, 1), ('Ʊ', 'ʊ', 2, 1),
    ('Ƴ', 'ƴ', 2, 2), ('Ʒ', 'ʒ', 1, 1), ('Ƹ', 'ƹ', 1, 1), ('Ƽ', 'ƽ', 1, 1), ('Ǆ', 'ǆ', 1, 1), ('ǅ', 'ǆ', 1, 1),
    ('Ǉ', 'ǉ', 1, 1), ('ǈ', 'ǉ', 1, 1), ('Ǌ', 'ǌ', 1, 1), ('ǋ', 'ǌ', 9, 2), ('Ǟ', 'ǟ', 9, 2), ('Ǳ', 'ǳ', 1, 1),
    ('ǲ', 'ǳ', 2, 2), ('Ƕ', 'ƕ', 1, 1), ('Ƿ', 'ƿ', 1, 1), ('Ǹ', 'ǹ', 20, 2), ('Ƞ', 'ƞ', 1, 1), ('Ȣ', 'ȣ', 9, 2),
    ('Ⱥ', 'ⱥ', 1, 1), ('Ȼ', 'ȼ', 1, 1), ('Ƚ', 'ƚ', 1, 1), ('Ⱦ', 'ⱦ', 1, 1), ('Ɂ', 'ɂ', 1, 1), ('Ƀ', 'ƀ', 1, 1),
    ('Ʉ', 'ʉ', 1, 1), ('Ʌ', 'ʌ', 1, 1), ('Ɇ', 'ɇ', 5, 2), ('Ͱ', 'ͱ', 2, 2), ('Ͷ', 'ͷ', 1, 1), ('Ϳ', 'ϳ', 1, 1),
    ('Ά', 'ά', 1, 1), ('Έ', 'έ', 3, 1), ('Ό', 'ό', 1, 1), ('Ύ', 'ύ', 2, 1), ('Α', 'α', 17, 1), ('Σ', 'σ', 9, 1),
    ('Ϗ', 'ϗ', 1, 1), ('Ϙ', 'ϙ', 12, 2), ('ϴ', 'θ', 1, 1), ('Ϸ', 'ϸ', 1, 1), ('Ϲ', 'ϲ', 1, 1), ('Ϻ', 'ϻ', 1, 1),
    ('Ͻ', 'ͻ', 3, 1), ('Ѐ', 'ѐ', 16, 1), ('А', 'а', 32, 1), ('Ѡ', 'ѡ', 17, 2), ('Ҋ', 'ҋ', 27, 2), ('Ӏ', 'ӏ', 1, 1),
    ('Ӂ', 'ӂ', 7, 2), ('Ӑ', 'ӑ', 48, 2), ('Ա', 'ա', 38, 1), ('Ⴀ', 'ⴀ', 38, 1), ('Ⴧ', 'ⴧ', 1, 1), ('Ⴭ', 'ⴭ', 1, 1),
    ('Ꭰ', 'ꭰ', 80, 1), ('Ᏸ', 'ᏸ', 6, 1), ('Ᲊ', 'ᲊ', 1, 1), ('Ა', 'ა', 43, 1), ('Ჽ', 'ჽ', 3, 1), ('Ḁ', 'ḁ', 75, 2),
    ('ẞ', 'ß', 1, 1), ('Ạ', 'ạ', 48, 2), ('Ἀ', 'ἀ', 8, 1), ('Ἐ', 'ἐ', 6, 1), ('Ἠ', 'ἠ', 8, 1), ('Ἰ', 'ἰ', 8, 1),
    ('Ὀ', 'ὀ', 6, 1), ('Ὑ', 'ὑ', 4, 2), ('Ὠ', 'ὠ', 8, 1), ('ᾈ', 'ᾀ', 8, 1), ('ᾘ', 'ᾐ', 8, 1), ('ᾨ', 'ᾠ', 8, 1),
    ('Ᾰ', 'ᾰ', 2, 1), ('Ὰ', 'ὰ', 2, 1), ('ᾼ', 'ᾳ', 1, 1), ('Ὲ', 'ὲ', 4, 1), ('ῌ', 'ῃ', 1, 1), ('Ῐ', 'ῐ', 2, 1),
    ('Ὶ', 'ὶ', 2, 1), ('Ῠ', 'ῠ', 2, 1), ('Ὺ', 'ὺ', 2, 1), ('Ῥ', 'ῥ', 1, 1), ('Ὸ', 'ὸ', 2, 1), ('Ὼ', 'ὼ', 2, 1),
    ('ῼ', 'ῳ', 1, 1), ('Ω', 'ω', 1, 1), ('K', 'k', 1, 1), ('Å', 'å', 1, 1), ('Ⅎ', 'ⅎ', 1, 1), ('Ⅰ', 'ⅰ', 16, 1),
    ('Ↄ', 'ↄ', 1, 1), ('Ⓐ', 'ⓐ', 26, 1), ('Ⰰ', 'ⰰ', 48, 1), ('Ⱡ', 'ⱡ', 1, 1), ('Ɫ', 'ɫ', 1, 1), ('Ᵽ', 'ᵽ', 1, 1),
    ('Ɽ', 'ɽ', 1, 1), ('Ⱨ', 'ⱨ', 3, 2), ('Ɑ', 'ɑ', 1, 1), ('Ɱ', 'ɱ', 1, 1), ('Ɐ', 'ɐ', 1, 1), ('Ɒ', 'ɒ', 1, 1),
    ('Ⱳ', 'ⱳ', 1, 1), ('Ⱶ', 'ⱶ', 1, 1), ('Ȿ', 'ȿ', 2, 1), ('Ⲁ', 'ⲁ', 50, 2), ('Ⳬ', 'ⳬ', 2, 2), ('Ⳳ', 'ⳳ', 1, 1),
    ('Ꙁ', 'ꙁ', 23, 2), ('Ꚁ', 'ꚁ', 14, 2), ('Ꜣ', 'ꜣ', 7, 2), ('Ꜳ', 'ꜳ', 31, 2), ('Ꝺ', 'ꝺ', 2, 2), ('Ᵹ', 'ᵹ', 1, 1),
    ('Ꝿ', 'ꝿ', 5, 2), ('Ꞌ', 'ꞌ', 1, 1), ('Ɥ', 'ɥ', 1, 1), ('Ꞑ', 'ꞑ', 2, 2), ('Ꞗ', 'ꞗ', 10, 2), ('Ɦ', 'ɦ', 1, 1),
    ('Ɜ', 'ɜ', 1, 1), ('Ɡ', 'ɡ', 1, 1), ('Ɬ', 'ɬ', 1, 1), ('Ɪ', 'ɪ', 1, 1), ('Ʞ', 'ʞ', 1, 1), ('Ʇ', 'ʇ', 1, 1),
    ('Ʝ', 'ʝ', 1, 1), ('Ꭓ', 'ꭓ', 1, 1), ('Ꞵ', 'ꞵ', 8, 2), ('Ꞔ', 'ꞔ', 1, 1), ('Ʂ', 'ʂ', 1, 1), ('Ᶎ', 'ᶎ', 1, 1),
    ('Ꟈ', 'ꟈ', 2, 2), ('Ɤ', 'ɤ', 1, 1), ('Ꟍ', 'ꟍ', 8, 2), ('Ƛ', 'ƛ', 1, 1), ('Ꟶ', 'ꟶ', 1, 1), ('Ａ', 'ａ', 26, 1),
    ('𐐀', '𐐨', 40, 1), ('𐒰', '𐓘', 36, 1), ('𐕰', '𐖗', 11, 1), ('𐕼', '𐖣', 15, 1), ('𐖌', '𐖳', 7, 1), ('𐖔', '𐖻', 2, 1),
    ('𐲀', '𐳀', 51, 1), ('𐵐', '𐵰', 22, 1), ('𑢠', '𑣀', 32, 1), ('𖹀', '𖹠', 32, 1), ('𖺠', '𖺻', 25, 1), ('𞤀', '𞤢', 34, 1)
  ) as runs(capital, small, letters, step)
  cross join lateral generate_series(0, letters - 1) as n;
  -- translate() compares characters as written, whatever the locale; the table is written into the
  -- function as two constants. An ASCII text (nearly every address) takes its 26 letters alone: the
  -- whole table costs a comparison with each of its letters for each character. Not strict, so that
  -- the planner inlines it into each query.
  execute format($create$
    create function unicode_lower(text) returns text
    language sql immutable parallel safe as $body$
      select case
        when $1 ~ '^[\x01-\x7f]*$' then translate($1, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
        else translate($1, %L, %L)
      end
    $body$$create$, capitals, smalls);
end
$migration$;

-- As in sql/42, with unicode_lower() in place of lower().
create or replace function idna_address_key(email text) returns text
language sql immutable strict parallel safe as $$
  select unicode_lower(substring(email from '^(.*)@')) || '@' || (
    select string_agg(case when label ~ '^[\x01-\x7f]*$' then label else 'xn--' || punycode_label(label) end, '.' order by position)
    from regexp_split_to_table(unicode_lower(normalize(substring(email from '@([^@]*)$'), nfkc)), '\.') with ordinality as labels(label, position)
  )
$$;

-- As in sql/42, with unicode_lower() in place of lower(): an ASCII address (nearly all) is only
-- lower-cased, inline.
create or replace function address_key(email text) returns text
language sql immutable parallel safe as $$
  select case when email ~ '^[\x01-\x7f]*$' then unicode_lower(email) else idna_address_key(email) end
$$;

-- The rows stored before: each under its key, one per app and key (the oldest, with its reason and
-- detail). Only a key with a non-ASCII letter can have changed; it can fall on a row already there.
with rekeyed as (
  select app_id, email, address_key(email) as key
  from suppressions
  where email !~ '^[\x01-\x7f]*$' and email <> address_key(email)
), candidates as (
  select app_id, email, key from rekeyed
  union
  select s.app_id, s.email, s.email
  from suppressions s
  join (select distinct app_id, key from rekeyed) k on k.app_id = s.app_id and k.key = s.email
), ranked as (
  select c.app_id, c.email, row_number() over (partition by c.app_id, c.key order by s.created_at, c.email) as rank
  from candidates c
  join suppressions s on s.app_id = c.app_id and s.email = c.email
)
delete from suppressions s
using ranked r
where s.app_id = r.app_id and s.email = r.email and r.rank > 1;

update suppressions set email = address_key(email) where email !~ '^[\x01-\x7f]*$' and email <> address_key(email);

-- "Lower-cased", whatever the locale: lower() would refuse a key on a locale whose case mappings
-- are newer than the table's (a suppression by an event, and its whole callback with it). Not
-- validated: every row is under its key now (above), and a scan of a million rows held the table,
-- and every send with it, for seconds.
alter table suppressions
  drop constraint suppressions_email_check,
  add constraint suppressions_email_check check (email = unicode_lower(email)) not valid;
