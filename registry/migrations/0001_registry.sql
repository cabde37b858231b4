-- The registry: organisations, people, memberships, cadre posts, uploads (SPEC §2, §3, §6, §9).

-- Organisations form a tree. `name_key` is the full name normalised the way rosters are
-- matched (NFKC, trimmed, inner spaces collapsed); `path` lists the ancestors from the
-- root down to the organisation itself, so "is X within the uploader's scope" is
-- `uploader_id = ANY(path)` with the GIN index, at any depth and national scale.
CREATE TABLE orgs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name     text   NOT NULL,
    name_key      text   NOT NULL UNIQUE,
    short_name    text   NOT NULL DEFAULT '',
    category      text   NOT NULL CHECK (category IN
                  ('leading_body', 'committee', 'working_committee', 'general_branch', 'branch')),
    parent_id     bigint REFERENCES orgs (id),
    own_province  text   CHECK (own_province ~ '^[0-9]{2}$'),
    province      text   CHECK (province ~ '^[0-9]{2}$'),
    industry      text,
    school_code   text   CHECK (school_code ~ '^[0-9]{10}$'),
    path          bigint[] NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orgs_parent ON orgs (parent_id);
CREATE INDEX orgs_path ON orgs USING gin (path);
CREATE INDEX orgs_short_name ON orgs (short_name);

-- One row per person, keyed by the normalised ID number. Identity verification is not
-- done by roster: everyone starts 未认证. The login rule is stored, not a password hash:
-- the initial password is the last 8 characters of the ID number and must be changed.
CREATE TABLE people (
    id_number            text PRIMARY KEY CHECK (id_number ~ '^[0-9]{17}[0-9X]$'),
    name                 text NOT NULL,
    ethnicity            text,
    political_status     text,
    joined_on            date,
    joined_precision     text CHECK (joined_precision IN ('month', 'day')),
    dev_number           text UNIQUE CHECK (dev_number ~ '^[0-9]{12}$'),
    education            text,
    occupation           text,
    phone                text,
    workplace            text,
    email                text,
    verification         text NOT NULL DEFAULT '未认证'
                         CHECK (verification IN ('未认证', '已认证', '认证未通过')),
    password_rule        text NOT NULL DEFAULT 'id_number_last_8',
    must_change_password boolean NOT NULL DEFAULT true,
    created_by_upload    bigint,
    updated_by_upload    bigint,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- A member belongs to exactly one branch.
CREATE TABLE memberships (
    id_number  text   PRIMARY KEY REFERENCES people (id_number),
    org_id     bigint NOT NULL REFERENCES orgs (id),
    is_cadre   boolean NOT NULL DEFAULT false,
    duty       text,
    upload_id  bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX memberships_org ON memberships (org_id);

-- Cadre posts: one person may hold posts in several organisations, one per organisation.
CREATE TABLE cadre_posts (
    id_number              text   NOT NULL REFERENCES people (id_number),
    org_id                 bigint NOT NULL REFERENCES orgs (id),
    duty                   text   NOT NULL,
    appointed_on           date,
    appointed_precision    text CHECK (appointed_precision IN ('month', 'day')),
    nature                 text,
    party_committee_member boolean,
    upload_id              bigint,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id_number, org_id)
);
CREATE INDEX cadre_posts_org ON cadre_posts (org_id);

-- One upload: the same content from the same uploader with the same template is one
-- upload, not two.
CREATE TABLE uploads (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uploader_org_id    bigint NOT NULL REFERENCES orgs (id),
    template           text   NOT NULL CHECK (template IN ('members', 'cadres')),
    content_sha256     text   NOT NULL,
    bucket             text,
    object_key         text,
    status             text   NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'succeeded', 'rejected', 'failed')),
    rows_total         integer,
    rows_valid         integer,
    rows_with_errors   integer,
    rows_with_warnings integer,
    file_error         jsonb,
    failure            text,
    timings            jsonb,
    report_prefix      text,
    report_keys        text[],
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    UNIQUE (content_sha256, uploader_org_id, template)
);
CREATE INDEX uploads_uploader ON uploads (uploader_org_id, created_at DESC);

-- The findings of each upload (summary.json's `errors`, queryable).
CREATE TABLE upload_errors (
    upload_id   bigint  NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    row_number  integer NOT NULL,
    column_name text    NOT NULL,
    code        text    NOT NULL,
    severity    text    NOT NULL CHECK (severity IN ('error', 'warning')),
    message     text    NOT NULL,
    org_id      bigint  REFERENCES orgs (id)
);
CREATE INDEX upload_errors_upload ON upload_errors (upload_id, row_number);
