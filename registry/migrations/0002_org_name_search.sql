-- "Did you mean" for unknown organisation names (SPEC §5.4): trigram similarity on the
-- normalised full name, indexed, so suggestions stay fast at national scale.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX orgs_name_trgm ON orgs USING gin (name_key gin_trgm_ops);
