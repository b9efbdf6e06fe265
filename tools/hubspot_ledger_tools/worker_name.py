"""`[core] hostname_callable` of the harness's workers (deployment.py): several workers on one
machine each record their own name on the task instances they run, as workers on separate
hosts would. Imported by every task process, so it imports nothing of its own."""

from __future__ import annotations

import os
import socket

WORKER_NAME_ENV = "HUBSPOT_LEDGER_WORKER_NAME"


def worker_name() -> str:
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()
