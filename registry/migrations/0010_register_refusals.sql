-- Refused admin registrations (a wrong organisation or registration code), kept a day:
-- registration is throttled per client address and per organisation (SPEC §12.1), and
-- every `roster serve` process shares the count.
CREATE TABLE register_refusals (
    id      bigserial PRIMARY KEY,
    client  text,
    org_key text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX register_refusals_client ON register_refusals (client, at);
CREATE INDEX register_refusals_org ON register_refusals (org_key, at);
