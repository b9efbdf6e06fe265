-- Tenant authorization as data (issue 13, DESIGN "every endpoint acts only within the caller's
-- organizations"): which Airflow user may act on which organization, and how far.
--
-- `username` is the auth manager's user name (BaseUser.get_name(): SimpleAuthManager's
-- username, FAB's username). Roles form a ladder, each including the one before it:
--   viewer    read the settings and the errors log of the organization's integrations
--   editor    also save settings and start a HubSpot connection (consent URL)
--   operator  also queue syncs
-- Airflow admins are not listed here: the plugin lets them act on every organization. A user
-- without a row for an organization does not see its integrations at all (404, as if missing).
-- Rows go with their organization; `hubspot-ledger member add|list|remove` manages them.
CREATE TABLE ledger.organization_members (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES ledger.organizations (id) ON DELETE CASCADE,
    username         text NOT NULL
                     CONSTRAINT organization_members_username_check
                     CHECK (btrim(username) = username AND username <> ''
                            AND length(username) <= 256),
    role             text NOT NULL
                     CONSTRAINT organization_members_role_check
                     CHECK (role IN ('viewer', 'editor', 'operator')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_members_key UNIQUE (organization_id, username)
);

-- "Which organizations may this user see": the lookup every request makes.
CREATE INDEX organization_members_username ON ledger.organization_members (username);

CREATE TRIGGER touch_updated_at BEFORE UPDATE ON ledger.organization_members
    FOR EACH ROW EXECUTE FUNCTION ledger.touch_updated_at();
