"""Development and test tooling around the product (`hubspot_ledger`): the HubSpot sandbox, the
benchmark, the fault matrix, the demo and the dependency audit.

Never on Airflow's plugin path nor in the production image; installed for development and
tests only (`make setup` installs it editable from `tools/`). It may import the product; the
product never imports it (tests/unit/test_layers.py walks the imports).
"""
