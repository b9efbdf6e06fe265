-- One portal per integration (issue 13, DESIGN "one portal per integration"): the portal id is
-- fixed at the first connection. connect.py refuses another portal already; this makes it hold
-- whatever the code above does, so an integration's records (keyed by integration, type and
-- HubSpot id) can only ever come from that one portal, and a deal of portal B can never land on
-- the row of portal A's deal with the same id.
CREATE FUNCTION ledger.keep_integration_portal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.remote_id IS NOT NULL AND NEW.remote_id IS DISTINCT FROM OLD.remote_id THEN
        RAISE EXCEPTION 'integration % is connected to portal %; create a new integration for portal %',
            OLD.id, OLD.remote_id, coalesce(NEW.remote_id, '(none)')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER keep_integration_portal BEFORE UPDATE OF remote_id ON ledger.integrations
    FOR EACH ROW EXECUTE FUNCTION ledger.keep_integration_portal();
