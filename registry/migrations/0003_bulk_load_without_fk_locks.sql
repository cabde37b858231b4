-- Bulk loads write people, memberships and cadre posts in one transaction. A foreign key
-- on the referencing tables makes every inserted row take a FOR KEY SHARE lock on the
-- person and on its organisation (a handful of branches shared by thousands of rows:
-- multixacts), which dominated the load stage (29 s of 63 s for 1 M rows, BENCHMARKS.md).
-- The loader writes the person before the membership in the same transaction and
-- organisations are never deleted, so the checks are kept by the code instead.
ALTER TABLE memberships DROP CONSTRAINT memberships_id_number_fkey;
ALTER TABLE memberships DROP CONSTRAINT memberships_org_id_fkey;
ALTER TABLE cadre_posts DROP CONSTRAINT cadre_posts_id_number_fkey;
ALTER TABLE cadre_posts DROP CONSTRAINT cadre_posts_org_id_fkey;
