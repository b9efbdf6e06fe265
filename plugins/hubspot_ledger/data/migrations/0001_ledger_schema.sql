-- 0001: the ledger schema of DESIGN.md, "Ledger data contract".
--
-- Applied by hubspot_ledger.ledger.migrations inside one transaction (so no BEGIN/COMMIT here).
-- Contract names are never renamed or dropped; later migrations only add.
--
-- Conventions, decided once for every table:
--   * ids: bigint GENERATED ALWAYS AS IDENTITY (nobody hand-picks ids, so sequences never collide).
--   * numbers: quantities and unit prices numeric(20,6) (fractional quantities, unit prices with
--     up to 6 decimals, 14 integer digits); money amounts numeric(20,4): 4 decimals hold every
--     ISO 4217 minor unit, so the map layer rounds to the currency and the database never has to;
--     16 integer digits, and an absurd magnitude fails loudly ("numeric field overflow") rather
--     than being stored. Percentages numeric(9,6) within 0..100.
--   * currencies: three upper-case letters (ISO 4217 shape; whether the code exists is the map
--     layer's call).
--   * tenant safety: every organization-owned table is UNIQUE (organization_id, id), and a row that
--     points at another organization-owned row does so through a composite foreign key
--     (organization_id, x_id) -> x (organization_id, id). A row can therefore never reference a
--     customer, company, account, item, contract or invoice of another organization, whatever
--     the code above it does.
--   * created_at/updated_at: updated_at is kept by a trigger, and only moves when a row really
--     changes, so an idempotent re-run that rewrites identical values leaves it alone.

CREATE SCHEMA IF NOT EXISTS ledger;

CREATE FUNCTION ledger.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Tenants and what accountants own: organizations, accounting companies, chart of accounts.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE ledger.organizations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CONSTRAINT organizations_name_key UNIQUE
                CONSTRAINT organizations_name_not_blank CHECK (btrim(name) <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The accounting entities ("companies") of an organization; not HubSpot companies (those become
-- customers). The name is unique per organization because operators name the company in
-- `settings set --company NAME`.
CREATE TABLE ledger.companies (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES ledger.organizations (id),
    name             text NOT NULL,
    currency         text CHECK (currency ~ '^[A-Z]{3}$'),
    is_placeholder   boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT companies_org_id_key UNIQUE (organization_id, id),
    CONSTRAINT companies_org_name_key UNIQUE (organization_id, name)
);
-- One "Unknown" company per organization (DESIGN: placeholders), shared by every invoice.
CREATE UNIQUE INDEX companies_one_placeholder_per_org
    ON ledger.companies (organization_id) WHERE is_placeholder;

CREATE TABLE ledger.accounts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES ledger.organizations (id),
    code             text NOT NULL,
    name             text NOT NULL,
    account_type     text NOT NULL
                     CHECK (account_type IN ('asset', 'liability', 'equity', 'income', 'expense')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_org_code_key UNIQUE (organization_id, code),
    CONSTRAINT accounts_org_id_key UNIQUE (organization_id, id)
);

-- A document dated inside a locked period of its company must not be written (R-DEAL-8).
CREATE TABLE ledger.accounting_periods (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  bigint NOT NULL REFERENCES ledger.companies (id) ON DELETE CASCADE,
    start_date  date NOT NULL,
    end_date    date NOT NULL,
    locked      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounting_periods_dates_ordered CHECK (end_date >= start_date)
);
CREATE INDEX accounting_periods_company_dates
    ON ledger.accounting_periods (company_id, start_date, end_date);

-- ---------------------------------------------------------------------------------------------
-- Integrations: one row per connected HubSpot portal of an organization, and its settings.
-- ---------------------------------------------------------------------------------------------

-- access_token/refresh_token hold ciphertext (Fernet, issue 3), never plain tokens.
-- expires_in is the seconds HubSpot returned, counted from token_created_at.
-- schedule is the integration's DAG schedule (issue 4: stored with the integration).
CREATE TABLE ledger.integrations (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id   bigint NOT NULL REFERENCES ledger.organizations (id),
    provider          text NOT NULL DEFAULT 'hubspot' CHECK (provider IN ('hubspot')),
    status            text NOT NULL DEFAULT 'disconnected'
                      CHECK (status IN ('disconnected', 'connected', 'error')),
    status_message    text,
    remote_id         text,
    currency          text CHECK (currency ~ '^[A-Z]{3}$'),
    cutoff_date       date NOT NULL,
    access_token      text,
    refresh_token     text,
    expires_in        integer CHECK (expires_in >= 0),
    scope             text,
    token_created_at  timestamptz,
    schedule          text NOT NULL DEFAULT '@hourly' CHECK (btrim(schedule) <> ''),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_org_id_key UNIQUE (organization_id, id)
);

-- One settings row per integration. Account and company settings stay NULL until the operator
-- sets them ("Setup incomplete"). Deleting the account or company a setting names clears just
-- that setting (ON DELETE SET NULL (col)), which R-SET-3 then reports as missing.
CREATE TABLE ledger.integration_settings (
    id                           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id              bigint NOT NULL,
    integration_id               bigint NOT NULL
                                 CONSTRAINT integration_settings_integration_key UNIQUE,
    ar_account_id                bigint,
    deferred_revenue_account_id  bigint,
    expense_account_id           bigint,
    income_account_id            bigint,
    clearing_account_id          bigint,
    company_id                   bigint,
    sync_invoices                boolean NOT NULL DEFAULT false,
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, integration_id)
        REFERENCES ledger.integrations (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, ar_account_id)
        REFERENCES ledger.accounts (organization_id, id) ON DELETE SET NULL (ar_account_id),
    FOREIGN KEY (organization_id, deferred_revenue_account_id)
        REFERENCES ledger.accounts (organization_id, id)
        ON DELETE SET NULL (deferred_revenue_account_id),
    FOREIGN KEY (organization_id, expense_account_id)
        REFERENCES ledger.accounts (organization_id, id) ON DELETE SET NULL (expense_account_id),
    FOREIGN KEY (organization_id, income_account_id)
        REFERENCES ledger.accounts (organization_id, id) ON DELETE SET NULL (income_account_id),
    FOREIGN KEY (organization_id, clearing_account_id)
        REFERENCES ledger.accounts (organization_id, id) ON DELETE SET NULL (clearing_account_id),
    FOREIGN KEY (organization_id, company_id)
        REFERENCES ledger.companies (organization_id, id) ON DELETE SET NULL (company_id)
);

-- ---------------------------------------------------------------------------------------------
-- What the sync writes: customers, items, contracts + obligations, invoices + lines.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE ledger.customers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES ledger.organizations (id),
    name             text NOT NULL,
    customer_type    text NOT NULL CHECK (customer_type IN ('company', 'individual')),
    email            text,
    phone            text,
    website          text,
    address_line1    text,
    address_line2    text,
    city             text,
    state            text,
    postal_code      text,
    country          text,
    is_placeholder   boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_org_id_key UNIQUE (organization_id, id)
);
-- One "Unknown" customer per organization (DESIGN: placeholders), shared by deals without a
-- company and by invoices.
CREATE UNIQUE INDEX customers_one_placeholder_per_org
    ON ledger.customers (organization_id) WHERE is_placeholder;

-- Service items carry a deferred-revenue account, goods do not (DESIGN: product types); the
-- map layer decides, the schema only keeps the accounts inside the organization.
CREATE TABLE ledger.items (
    id                           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id              bigint NOT NULL REFERENCES ledger.organizations (id),
    sku                          text NOT NULL,
    name                         text NOT NULL,
    description                  text,
    item_type                    text NOT NULL CHECK (item_type IN ('service', 'goods')),
    income_account_id            bigint,
    expense_account_id           bigint,
    deferred_revenue_account_id  bigint,
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT items_org_sku_key UNIQUE (organization_id, sku),
    CONSTRAINT items_org_id_key UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, income_account_id)
        REFERENCES ledger.accounts (organization_id, id),
    FOREIGN KEY (organization_id, expense_account_id)
        REFERENCES ledger.accounts (organization_id, id),
    FOREIGN KEY (organization_id, deferred_revenue_account_id)
        REFERENCES ledger.accounts (organization_id, id)
);

-- The sync only ever writes 'draft'; accountants move a contract on to active, then completed,
-- or cancel it. Anything but 'draft' is never overwritten by the sync (issue 4).
CREATE TABLE ledger.contracts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES ledger.organizations (id),
    company_id       bigint NOT NULL,
    customer_id      bigint NOT NULL,
    status           text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'active', 'completed', 'cancelled')),
    name             text NOT NULL,
    memo             text,
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    contract_date    date NOT NULL,
    total_amount     numeric(20, 4) NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_org_id_key UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, company_id) REFERENCES ledger.companies (organization_id, id),
    FOREIGN KEY (organization_id, customer_id) REFERENCES ledger.customers (organization_id, id)
);
CREATE INDEX contracts_customer ON ledger.contracts (organization_id, customer_id);
CREATE INDEX contracts_company_date ON ledger.contracts (company_id, contract_date);

-- organization_id is added to the contract's own columns so that the obligation's contract and
-- item are provably of the same organization. amount is net of discount (DESIGN: obligation
-- money); discount_amount is the line's whole fixed discount, empty for a percentage.
-- recognition_strategy: 'immediate' (all the sync writes, R-DEAL-6) or 'ratable' (over time,
-- set by accountants).
CREATE TABLE ledger.performance_obligations (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id       bigint NOT NULL,
    contract_id           bigint NOT NULL,
    item_id               bigint NOT NULL,
    description           text,
    quantity              numeric(20, 6) NOT NULL CHECK (quantity >= 0),
    unit_price            numeric(20, 6) NOT NULL,
    discount_percent      numeric(9, 6) CHECK (discount_percent BETWEEN 0 AND 100),
    discount_amount       numeric(20, 4) CHECK (discount_amount >= 0),
    amount                numeric(20, 4) NOT NULL,
    recognition_strategy  text NOT NULL DEFAULT 'immediate'
                          CHECK (recognition_strategy IN ('immediate', 'ratable')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, contract_id)
        REFERENCES ledger.contracts (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, item_id) REFERENCES ledger.items (organization_id, id)
);
CREATE INDEX performance_obligations_contract ON ledger.performance_obligations (contract_id);
CREATE INDEX performance_obligations_item ON ledger.performance_obligations (item_id);

CREATE TABLE ledger.invoices (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES ledger.organizations (id),
    company_id       bigint NOT NULL,
    customer_id      bigint NOT NULL,
    number           text,
    invoice_date     date NOT NULL,
    due_date         date NOT NULL,
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_amount     numeric(20, 4) NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_org_id_key UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, company_id) REFERENCES ledger.companies (organization_id, id),
    FOREIGN KEY (organization_id, customer_id) REFERENCES ledger.customers (organization_id, id)
);
CREATE INDEX invoices_customer ON ledger.invoices (organization_id, customer_id);
CREATE INDEX invoices_company_date ON ledger.invoices (company_id, invoice_date);

-- A discount is its own line with a negative unit price and amount (DESIGN: invoice discount
-- line), so only the quantity is bounded below.
CREATE TABLE ledger.invoice_lines (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL,
    invoice_id       bigint NOT NULL,
    item_id          bigint NOT NULL,
    description      text,
    quantity         numeric(20, 6) NOT NULL CHECK (quantity >= 0),
    unit_price       numeric(20, 6) NOT NULL,
    amount           numeric(20, 4) NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, invoice_id)
        REFERENCES ledger.invoices (organization_id, id) ON DELETE CASCADE,
    FOREIGN KEY (organization_id, item_id) REFERENCES ledger.items (organization_id, id)
);
CREATE INDEX invoice_lines_invoice ON ledger.invoice_lines (invoice_id);
CREATE INDEX invoice_lines_item ON ledger.invoice_lines (item_id);

-- ---------------------------------------------------------------------------------------------
-- Sync bookkeeping: runs, the remote -> local map, the errors log.
-- ---------------------------------------------------------------------------------------------

-- counts: per object type, {"deals": {"created": 1, "updated": 0, ...}, ...}.
-- A run is finished exactly when it is no longer running.
CREATE TABLE ledger.sync_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES ledger.integrations (id) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'success', 'failed')),
    counts          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    dag_run_id      text,
    message         text,
    CONSTRAINT sync_runs_finished_iff_done CHECK ((status = 'running') = (finished_at IS NULL)),
    CONSTRAINT sync_runs_dates_ordered CHECK (finished_at >= started_at)
);
CREATE INDEX sync_runs_integration ON ledger.sync_runs (integration_id, started_at DESC);

-- The unique key (integration_id, remote_type, remote_id) is what makes "one customer, item,
-- contract or invoice per remote record per integration" hold: loaders upsert through it.
-- Each remote type may only map to the ledger table it is loaded into. fingerprint is a hash of
-- the last mapped payload, so an unchanged record can be recognised without rewriting it.
CREATE TABLE ledger.integration_records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES ledger.integrations (id) ON DELETE CASCADE,
    remote_type     text NOT NULL
                    CHECK (remote_type IN ('product', 'company', 'deal', 'line_item', 'invoice')),
    remote_id       text NOT NULL CHECK (remote_id <> ''),
    local_table     text NOT NULL
                    CHECK (local_table IN ('items', 'customers', 'contracts',
                                           'performance_obligations', 'invoices', 'invoice_lines')),
    local_id        bigint NOT NULL,
    fingerprint     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integration_records_remote_key UNIQUE (integration_id, remote_type, remote_id),
    CONSTRAINT integration_records_type_matches_table CHECK (
        (remote_type, local_table) IN (
            ('product', 'items'),
            ('company', 'customers'),
            ('deal', 'contracts'),
            ('line_item', 'performance_obligations'),
            ('line_item', 'invoice_lines'),
            ('invoice', 'invoices')
        )
    )
);
-- Reverse lookup: which remote record produced this ledger row.
CREATE INDEX integration_records_local
    ON ledger.integration_records (integration_id, local_table, local_id);

-- remote_type/remote_id are empty for errors that concern no single record (e.g. auth).
CREATE TABLE ledger.integration_errors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id  bigint NOT NULL REFERENCES ledger.integrations (id) ON DELETE CASCADE,
    sync_run_id     bigint REFERENCES ledger.sync_runs (id) ON DELETE SET NULL,
    remote_type     text
                    CHECK (remote_type IN ('product', 'company', 'deal', 'line_item', 'invoice')),
    remote_id       text,
    message         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integration_errors_id_needs_type
        CHECK (remote_id IS NULL OR remote_type IS NOT NULL)
);
CREATE INDEX integration_errors_integration
    ON ledger.integration_errors (integration_id, created_at DESC);
CREATE INDEX integration_errors_run ON ledger.integration_errors (sync_run_id);

-- ---------------------------------------------------------------------------------------------
-- updated_at triggers on every table that has the column.
-- ---------------------------------------------------------------------------------------------
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'organizations', 'companies', 'accounts', 'accounting_periods', 'integrations',
        'integration_settings', 'customers', 'items', 'contracts', 'performance_obligations',
        'invoices', 'invoice_lines', 'integration_records'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER touch_updated_at BEFORE UPDATE ON ledger.%I '
            'FOR EACH ROW EXECUTE FUNCTION ledger.touch_updated_at()', t);
    END LOOP;
END
$$;
