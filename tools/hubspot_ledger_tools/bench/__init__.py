"""`make bench`: the sync of a large sandbox portal at HubSpot's rate limits, measured.

`python -m hubspot_ledger_tools.bench [--scale large] [--phases full,incremental,nochange]` writes
`bench/report.md` and `bench/report.json`. Modules: `cli` (the run), `environment` (ledger
database, sandbox, connected integration), `census` (what the data asks to read), `minimal`
(the fewest requests and the rate-limit floor), `worker` (one phase in its own process),
`phase` (measuring a phase), `figures` (derived figures and targets), `report` (the files),
`parse_time` (DAG-file parse time with many integrations).
"""
