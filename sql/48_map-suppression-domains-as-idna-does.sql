-- A domain's key is the domain UTS #46 maps it to (what Node's domainToASCII, browsers and mail
-- clients give: domain/email-address.ts's addressKey), not the domain lower-cased. idna_address_key()
-- (sql/42, sql/44) took NFKC and then lower-cased each letter one for one, which UTS #46 does for
-- nearly every letter but not these, whose case folding is not their lower case:
-- - ẞ is ss (STRAẞE.example is strasse.example), where lower-casing made it ß (straße.example, another
--   domain: IDNA2008 keeps ß and the final sigma ς as letters of their own);
-- - İ is i with a combining dot above, where lower-casing made it a plain i;
-- - the ypogegrammeni (ͅ, and each Greek letter written with it, ᾳ, ᾀ…) is ι, the lunate sigma ϲ and
--   the mathematical final sigmas σ, the old Cyrillic forms ᲀ…ᲈ their plain letters, and Cherokee
--   small letters the capitals (Cherokee folds to its capitals).
-- So a bounce of x@STRAẞE.example suppressed x@straße.example, and not x@strasse.example, where it
-- went. The local part keeps its key (each letter lower-cased one for one: ß and ss, σ and ς stay
-- apart there, as a receiving server may keep them apart). Keys stored before keep theirs: a key
-- holds no trace of whether its ß was an ẞ, and an old key stops what it stopped before.
do $migration$
declare
  from_letters text;
  to_letters text;
begin
  -- The letters mapped one for one once decomposed (NFD) and lower-cased: the ypogegrammeni, the old
  -- Cyrillic forms, and the Cherokee small letters (the capitals lower-cased by unicode_lower()) to
  -- their capitals.
  select 'ͅᲀᲁᲂᲃᲄᲅᲆᲇᲈ' || string_agg(chr(small), '' order by small), 'ιвдосттъѣꙋ' || string_agg(chr(capital), '' order by small)
  into from_letters, to_letters
  from (
    select 43888 + n as small, 5024 + n as capital from generate_series(0, 79) as n
    union all
    select 5112 + n, 5104 + n from generate_series(0, 5) as n
  ) as cherokee;
  -- The lunate sigma and the mathematical final sigmas (ϲ𝛓𝜍𝝇𝞁𝞻) are σ, where NFKC would make them
  -- ς: mapped before it. ẞ
  -- is ss before unicode_lower() makes it ß. NFD before lower-casing: İ is I and a dot above, so its
  -- small is i and that dot (no letter holds both, NFC leaves them apart), and a letter with a
  -- ypogegrammeni holds that mark apart, for the table to map it to ι. NFC last, as UTS #46.
  execute format($create$
    create function idna_domain(domain text) returns text
    language sql immutable strict parallel safe as $body$
      select normalize(translate(unicode_lower(normalize(replace(normalize(translate(domain, 'ϲ𝛓𝜍𝝇𝞁𝞻', 'σσσσσσ'), nfkc), 'ẞ', 'ss'), nfd)), %L, %L), nfc)
    $body$$create$, from_letters, to_letters);
end
$migration$;

-- As in sql/44, with idna_domain() in place of NFKC and unicode_lower() for the domain.
create or replace function idna_address_key(email text) returns text
language sql immutable strict parallel safe as $$
  select unicode_lower(substring(email from '^(.*)@')) || '@' || (
    select string_agg(case when label ~ '^[\x01-\x7f]*$' then label else 'xn--' || punycode_label(label) end, '.' order by position)
    from regexp_split_to_table(idna_domain(substring(email from '@([^@]*)$')), '\.') with ordinality as labels(label, position)
  )
$$;

-- An index of address_key() (sql/49) is built, and its expression evaluated, with only pg_catalog
-- on the search_path (PostgreSQL 17 does so for every index build): each function finds the others
-- in this schema by its own search_path, set to this one's; address_key(), inlined into the index
-- and into each query (a SET would stop that), names its two in full.
alter function idna_address_key(text) set search_path from current;
alter function idna_domain(text) set search_path from current;
alter function punycode_label(text) set search_path from current;
do $migration$
begin
  execute format($create$
    create or replace function address_key(email text) returns text
    language sql immutable parallel safe as $body$
      select case when email ~ '^[\x01-\x7f]*$' then %1$I.unicode_lower(email) else %1$I.idna_address_key(email) end
    $body$$create$, current_schema());
end
$migration$;

-- The dashboard's search by recipient goes through an index of address_key(email) (sql/49): this
-- one, of lower(email), followed the database's locale (a plain C one lower-cases ASCII letters
-- only) and no longer serves a query.
drop index if exists email_recipients_lower_email_job_id_idx;
