-- Nightly completion statistics (SPEC §8): one dated snapshot per night, history kept.
-- Each snapshot is its own partition of `org_stats`, built aside and swapped in, so
-- re-running a date replaces that date's snapshot atomically and old nights can be
-- dropped whole.
CREATE TABLE stats_snapshots (
    snapshot_date date PRIMARY KEY,
    orgs          integer NOT NULL,
    people        bigint  NOT NULL,
    seconds       double precision NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Category order of the by-category arrays: leading_body, committee, working_committee,
-- general_branch, branch.
CREATE TABLE org_stats (
    snapshot_date           date    NOT NULL,
    org_id                  bigint  NOT NULL,
    category                text    NOT NULL,
    parent_id               bigint,
    complete                boolean NOT NULL,
    -- The organisation's own people: members (branches) and cadres, and how many complete.
    people_total            integer NOT NULL,
    people_complete         integer NOT NULL,
    cadres_total            integer NOT NULL,
    cadres_complete         integer NOT NULL,
    -- Over its whole subtree (itself included).
    subtree_people_total    bigint  NOT NULL,
    subtree_people_complete bigint  NOT NULL,
    -- Organisations below it (itself excluded), in all and by category.
    sub_orgs_total          integer NOT NULL,
    sub_orgs_complete       integer NOT NULL,
    sub_total_by_category   integer[] NOT NULL,
    sub_complete_by_category integer[] NOT NULL
) PARTITION BY LIST (snapshot_date);
CREATE INDEX org_stats_org ON org_stats (org_id, snapshot_date);
