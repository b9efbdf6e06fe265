-- Connect (issue 3): what the OAuth flow stores beyond the contract's columns.

-- The portal's uiDomain from account details: deep links use it (EU portals are not on
-- app.hubspot.com). NULL until connected; readers default to app.hubspot.com.
ALTER TABLE ledger.integrations ADD COLUMN ui_domain text;

-- Every OAuth `state` that reached the callback, by its nonce. A state is signed and expires
-- (see hubspot_ledger.oauth_state); recording its use makes it single-use, so a captured
-- callback URL cannot be replayed. Rows past expires_at are only history and can be purged.
CREATE TABLE ledger.oauth_states (
    nonce           text PRIMARY KEY CHECK (btrim(nonce) <> ''),
    integration_id  bigint NOT NULL REFERENCES ledger.integrations (id) ON DELETE CASCADE,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_states_expires_at_idx ON ledger.oauth_states (expires_at);
