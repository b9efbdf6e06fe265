-- Issue 14 ("beyond the reference connector"): three integration settings, each off by default
-- so that an integration behaves as the reference connector does until someone turns it on,
-- and the service period of a ratable obligation (DESIGN: contract additions).

ALTER TABLE ledger.integration_settings
    ADD COLUMN invoice_parties text NOT NULL DEFAULT 'unknown'
        CHECK (invoice_parties IN ('unknown', 'hubspot')),
    -- 'closedwon', 'all-pipelines', or HubSpot stage ids separated by commas
    ADD COLUMN won_stages text NOT NULL DEFAULT 'closedwon'
        CHECK (won_stages <> '' AND length(won_stages) <= 2000),
    ADD COLUMN recognition text NOT NULL DEFAULT 'immediate'
        CHECK (recognition IN ('immediate', 'hubspot-terms'));

ALTER TABLE ledger.performance_obligations
    ADD COLUMN service_start_date date,
    ADD COLUMN service_end_date date,
    ADD CONSTRAINT performance_obligations_service_period
        CHECK ((service_start_date IS NULL) = (service_end_date IS NULL)
               AND (service_end_date IS NULL OR service_end_date >= service_start_date));
