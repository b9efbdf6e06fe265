"""From a webhook call's events to the runs they start: each portal's integrations, the burst
rule, and asking Airflow (through `ask`, the endpoint's asset event) for a run.

Per portal named in the call:
- no integration is connected to it: logged and ignored (another app's portal, or an
  integration deleted since; HubSpot is still answered 200, or it would retry for a day);
- per integration connected to it (each its own tenant: an event of portal P reaches only the
  integrations connected to P): one that could not run now (setup incomplete, HubSpot access
  revoked) is logged and left alone — its schedule runs it as before; otherwise the events are
  recorded in the ledger (`store.webhooks.note`), and the first event no run has taken yet asks
  Airflow for a run. Later events of the burst only add to what that run will take.

Nothing here logs a secret: portal ids, integration ids, counts, and setup messages (which name
settings, never values).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from hubspot_ledger.errors import NotFound, ReconnectRequired, SetupIncomplete
from hubspot_ledger.hooks.ledger import LedgerHook
from hubspot_ledger.webhooks.events import Batch

log = logging.getLogger(__name__)

REARM_ENV = "HUBSPOT_LEDGER_WEBHOOK_REARM_SECONDS"


def rearm() -> dt.timedelta:
    """How long events may stay pending after asking for a run before the next event asks
    again (the asked-for run never came: its DAG was paused, or the run failed before taking
    them). Asking again is harmless: Airflow queues at most one asset-triggered run per DAG."""
    return dt.timedelta(seconds=float(os.environ.get(REARM_ENV, "900")))


# Ask Airflow for a run of the integration's DAG; False when Airflow does not know its asset
# yet (a DAG not parsed yet).
Ask = Callable[[int, int], bool]


@dataclass
class Outcome:
    asked: list[int] = field(default_factory=list)  # integrations Airflow was asked to run
    pending: list[int] = field(default_factory=list)  # a run was asked for already
    not_ready: list[int] = field(default_factory=list)
    unknown_portals: list[int] = field(default_factory=list)


def _problem(ledger: LedgerHook, integration_id: int) -> str | None:
    """Why the integration's run would stop at validate_setup now, or None."""
    from hubspot_ledger.integration_settings import validate_setup

    try:
        validate_setup(integration_id, ledger=ledger)
    except (SetupIncomplete, ReconnectRequired, NotFound) as exc:
        return str(exc)
    return None


def deliver(batch: Batch, ask: Ask, ledger: LedgerHook | None = None) -> Outcome:
    """Record the batch's events and ask for the runs they need (module docstring)."""
    if ledger is None:
        with LedgerHook() as own:  # its connection closes with the request
            return deliver(batch, ask, own)
    outcome = Outcome()
    for portal, events in sorted(batch.portals.items()):
        integrations = ledger.webhooks.portal_integrations(portal)
        if not integrations:
            log.info("HubSpot webhook: %d event(s) of portal %d, which no integration is "
                     "connected to: ignored", events.count, portal)
            outcome.unknown_portals.append(portal)
            continue
        for integration_id in integrations:
            problem = _problem(ledger, integration_id)
            if problem is not None:
                log.info("HubSpot webhook: %d event(s) of portal %d for integration %d, which "
                         "cannot run now (%s): no run started; its schedule runs it",
                         events.count, portal, integration_id, problem)
                outcome.not_ready.append(integration_id)
                continue
            signal = ledger.webhooks.note(integration_id, events.count, events.deals,
                                          rearm=rearm())
            if signal is None:
                outcome.pending.append(integration_id)
                continue
            try:
                asked = ask(integration_id, events.count)
            except Exception:
                ledger.webhooks.unsignal(integration_id, signal)
                raise
            if not asked:
                ledger.webhooks.unsignal(integration_id, signal)
                log.warning("HubSpot webhook: Airflow does not know the DAG of integration %d "
                            "yet (the DAG processor adds it at its next parse): its events "
                            "wait for the next webhook or its schedule", integration_id)
                continue
            outcome.asked.append(integration_id)
    log.info("HubSpot webhook: %d event(s); runs asked for integrations %s; already asked "
             "for %s", batch.events, outcome.asked or "none", outcome.pending or "none")
    return outcome
