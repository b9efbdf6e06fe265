"""`python -m hubspot_ledger_tools.sandbox`. Guarded: Airflow's plugin manager imports every module
in the plugins folder, and this one must not start a server when merely imported."""

import sys

from hubspot_ledger_tools.sandbox.cli import main

if __name__ == "__main__" and __spec__ is not None and __spec__.name.startswith("hubspot_ledger"):
    sys.exit(main())
