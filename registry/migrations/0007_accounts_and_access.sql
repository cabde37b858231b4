-- The service (SPEC §12): admin accounts, sessions, registration codes, the organisation
-- each report belongs to (who may download it), progress of running uploads, and the
-- audit trail.

-- Admin registration codes (管理员注册码): 8 letters and digits, case-sensitive, drawn
-- from PostgreSQL's strong random source (gen_random_uuid), created with every
-- organisation. The bytes used are the UUID's random ones (not its version and variant
-- bits); the modulo bias of 256 over 62 is negligible next to 62^8 codes.
CREATE FUNCTION new_reg_code() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(
        substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
               get_byte(b, i) % 62 + 1, 1), '' ORDER BY i)
    FROM (SELECT uuid_send(gen_random_uuid()) AS b) u,
         unnest(ARRAY[0, 1, 2, 3, 4, 5, 10, 11]) AS i
$$;
ALTER TABLE orgs ADD COLUMN reg_code text NOT NULL DEFAULT new_reg_code()
    CHECK (reg_code ~ '^[A-Za-z0-9]{8}$');

-- An admin (管理员) of one organisation; the account name is the ID number. At most two
-- per organisation: registration locks the organisation's row and counts.
CREATE TABLE admins (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id_number            text COLLATE "C" NOT NULL UNIQUE,
    name                 text NOT NULL,
    phone                text NOT NULL,
    org_id               bigint NOT NULL REFERENCES orgs (id),
    -- Argon2id, as a PHC string (algorithm, parameters and salt travel with the hash).
    password_hash        text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    must_change_password boolean NOT NULL DEFAULT false,
    failed_logins        integer NOT NULL DEFAULT 0,
    locked_until         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admins_org ON admins (org_id);

-- Sessions and API tokens alike: only the SHA-256 of the secret is stored. Any number of
-- `roster serve` processes share them.
CREATE TABLE sessions (
    token_sha256 text PRIMARY KEY,
    admin_id     bigint NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_admin ON sessions (admin_id);

-- Every report of an upload, with the organisation it belongs to: the uploader's for
-- summary.xlsx, summary.json and escalations.xlsx; the branch's (or the uploader's, for
-- rows naming no known branch) for an organisation workbook. Downloads are authorised
-- against this table, never against a file name.
CREATE TABLE upload_reports (
    upload_id  bigint NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    name       text   NOT NULL,
    kind       text   NOT NULL CHECK (kind IN ('summary', 'summary_json', 'escalations', 'organisation')),
    org_id     bigint NOT NULL REFERENCES orgs (id),
    object_key text   NOT NULL,
    PRIMARY KEY (upload_id, name)
);
CREATE INDEX upload_reports_org ON upload_reports (org_id, upload_id);

-- Progress of a running upload, for the pages: the stage it is in and the rows read.
ALTER TABLE uploads ADD COLUMN stage text, ADD COLUMN rows_done bigint;

-- Who did what, when, from where: logins (and refusals), uploads, downloads. Never an ID
-- or phone number in `detail`.
CREATE TABLE audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    admin_id  bigint REFERENCES admins (id),
    action    text NOT NULL,
    upload_id bigint,
    detail    text,
    client    text
);
CREATE INDEX audit_admin ON audit (admin_id, at);
