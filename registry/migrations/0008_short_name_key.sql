-- Short names compared as full names are (SPEC §5.4 suggestions): normalised on both
-- sides. The import writes the key normalised in Rust (NFKC, zero-width characters
-- removed, white space collapsed); rows imported before are keyed here the same way.
ALTER TABLE orgs ADD COLUMN short_key text COLLATE "C";
UPDATE orgs SET short_key = nullif(
    regexp_replace(
        btrim(translate(normalize(short_name, NFKC), E'\u200B\u200C\u200D\u2060\uFEFF', '')),
        '\s+', ' ', 'g'),
    '');
