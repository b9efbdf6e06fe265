"""`python -m hubspot_ledger_tools.bench` (what `make bench` runs). Guarded like the
sandbox's: Airflow's plugin manager may import modules of the plugins folder, and this one must
not run then."""

import sys

from hubspot_ledger_tools.bench.cli import main

if __name__ == "__main__" and __spec__ is not None and __spec__.name.startswith("hubspot_ledger"):
    sys.exit(main())
