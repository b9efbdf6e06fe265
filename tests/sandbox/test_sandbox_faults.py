"""Fault injection: each action and trigger, matching, determinism, and rule validation."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from support import logged

from hubspot_ledger_tools.sandbox.testing import SandboxAdminError, SandboxServer

from .helpers import Api

pytestmark = pytest.mark.integration

DEALS = "/crm/v3/objects/deals"


def statuses(api: Api, count: int, path: str = DEALS) -> list[int]:
    return [api.get(path).status_code for _ in range(count)]


def test_status_on_the_nth_call_every_nth_and_first_k(sb: SandboxServer, api: Api) -> None:
    sb.set_faults([{"endpoint": "GET /crm/v3/objects/deals", "status": 503, "nth": 2}])
    assert statuses(api, 4) == [200, 503, 200, 200]
    sb.set_faults([{"path": "/crm/v3/objects/deals", "status": 500, "every": 3}])
    assert statuses(api, 7) == [200, 200, 500, 200, 200, 500, 200]
    sb.set_faults([{"object_type": "deals", "status": 502, "first": 2}])
    assert statuses(api, 3) == [502, 502, 200]
    assert statuses(api, 1, "/crm/v3/objects/companies") == [200]  # not matched
    sb.clear_faults()
    assert statuses(api, 2) == [200, 200]


def test_fault_bodies(sb: SandboxServer, api: Api) -> None:
    sb.set_faults([{"object_type": "deal", "status": 429, "nth": 1},
                   {"object_type": "companies", "status": 504},
                   {"endpoint": "POST /crm/v3/objects/*/search", "status": 429}])
    limited = api.get(DEALS)
    body = limited.json()
    assert limited.status_code == 429 and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT" and body["category"] == "RATE_LIMITS"
    assert body["correlationId"] == limited.headers["X-HubSpot-Correlation-Id"]
    gateway = api.get("/crm/v3/objects/companies")
    assert gateway.status_code == 504 and gateway.json()["status"] == "error"
    assert api.search("deals").json()["policyName"] == "SECONDLY"


def test_delay(sb: SandboxServer, api: Api) -> None:
    sb.add_fault(action="delay", delay=0.3, endpoint="GET /crm/v3/objects/deals", nth=1)
    assert api.get(DEALS).status_code == 200
    api.get(DEALS)
    first, second = logged(sb, "GET /crm/v3/objects/deals")[:2]
    assert first["fault"] and not second["fault"]  # nth=1: only the first was held back
    assert first["duration_ms"] >= 300  # as long as the sandbox took to answer it
    sb.set_faults([{"status": 503, "delay": 0.2, "object_type": "deals"}])
    assert api.get(DEALS).status_code == 503
    delayed = logged(sb, "GET /crm/v3/objects/deals")[-1]
    assert delayed["status"] == 503 and delayed["duration_ms"] >= 200


def test_connection_reset(sb: SandboxServer, api: Api) -> None:
    sb.add_fault(action="reset", method="POST", endpoint="*/search", nth=1)
    with pytest.raises(requests.ConnectionError):
        api.search("deals")
    assert api.search("deals").status_code == 200
    entry = sb.requests(endpoint="POST /crm/v3/objects/deals/search")[0]
    assert entry["status"] is None and entry["fault"]


def test_early_token_expiry(sb: SandboxServer, api: Api) -> None:
    sb.add_fault(action="expire_token", nth=2, object_type="deals")
    assert api.get(DEALS).status_code == 200
    expired = api.get(DEALS)
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert api.get("/crm/v3/objects/companies").status_code == 401  # the token stays expired


def test_faults_on_the_token_endpoint_and_per_portal(sb: SandboxServer, api: Api) -> None:
    sb.add_portal(portal_id=8080)
    sb.set_faults([{"endpoint": "POST /oauth/v3/token", "status": 503, "first": 1},
                   {"portal_id": 8080, "status": 500}])
    tokens = sb.issue_tokens()
    form = {"grant_type": "refresh_token", "client_id": sb.client_id,
            "client_secret": sb.client_secret, "refresh_token": tokens["refresh_token"]}
    url = f"{sb.url}/oauth/v3/token"
    assert [requests.post(url, data=form, timeout=10).status_code for _ in range(2)] == \
        [503, 200]
    other = Api(sb.url, sb.issue_tokens(portal_id=8080)["access_token"])
    assert other.get(DEALS).status_code == 500 and api.get(DEALS).status_code == 200


def test_raw_answers_any_body_with_any_status(sb: SandboxServer, api: Api) -> None:
    """A 200 that is not what HubSpot documents: a proxy's page, a half-written body, `{}`, a
    list. The body is sent byte for byte, with the given content type."""
    token_url = f"{sb.url}/oauth/v3/token"
    sb.set_faults([{"endpoint": "POST /oauth/v3/token", "action": "raw",
                    "raw": "<html>gateway</html>", "content_type": "text/html", "nth": 1},
                   {"endpoint": "POST /oauth/v3/token", "raw": "[]", "nth": 2},
                   {"object_type": "deals", "raw": '{"results": [', "status": 502}])
    page = requests.post(token_url, data={}, timeout=10)
    assert (page.status_code, page.text) == (200, "<html>gateway</html>")
    assert page.headers["Content-Type"].startswith("text/html")
    listed = requests.post(token_url, data={}, timeout=10)
    assert (listed.status_code, listed.json()) == (200, [])
    assert listed.headers["Content-Type"] == "application/json"
    truncated = api.get(DEALS)
    assert (truncated.status_code, truncated.text) == (502, '{"results": [')
    assert requests.post(token_url, data={}, timeout=10).status_code == 400  # the real one
    entry = sb.requests(endpoint="GET /crm/v3/objects/deals")[0]
    assert entry["status"] == 502 and entry["fault"]


def test_fault_headers(sb: SandboxServer, api: Api) -> None:
    sb.set_faults([{"object_type": "deals", "status": 503, "headers": {"Retry-After": "7"}},
                   {"object_type": "companies", "raw": "{}", "headers": {"X-Extra": "yes"}}])
    unavailable = api.get(DEALS)
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "7"
    assert unavailable.json()["category"] == "SERVICE_UNAVAILABLE"  # HubSpot's body still
    extra = api.get("/crm/v3/objects/companies")
    assert extra.headers["X-Extra"] == "yes" and extra.json() == {}


def test_drip_sends_the_real_answer_a_few_bytes_at_a_time(sb: SandboxServer, api: Api) -> None:
    """A server that never pauses long enough for a read time-out, yet never finishes."""
    plain = api.get(DEALS, params={"limit": 1})
    interval = 0.2
    sb.add_fault(action="drip", drip_interval=interval, drip_bytes=4, object_type="deals", nth=1)
    asked = time.monotonic()
    with api.session.get(f"{sb.url}{DEALS}", params={"limit": 1}, stream=True, timeout=5,
                         headers={"Authorization": f"Bearer {api.token}"}) as dripping:
        assert dripping.status_code == 200
        pieces: list[tuple[bytes, float]] = []
        for _ in range(4):  # urllib3 returns once 4 bytes came
            piece = dripping.raw.read(4)
            pieces.append((piece, time.monotonic() - asked))
        rest = dripping.raw.read(8)
    assert [len(piece) for piece, _ in pieces] == [4, 4, 4, 4]
    assert b"".join(piece for piece, _ in pieces) + rest == plain.content[:24]
    # Piece n can only have come after the sandbox's n pauses (a lower bound only: a slow
    # machine makes pieces later, never earlier), and the pieces came in order.
    arrived = [at for _, at in pieces]
    assert arrived == sorted(arrived)
    for n, at in enumerate(arrived):
        assert at >= n * interval * 0.95, (n, arrived)
    assert api.get(DEALS, params={"limit": 1}).content == plain.content  # nth=1 only
    deadline = time.monotonic() + 5  # the dropped drip is logged once it notices
    while (entry := sb.requests(endpoint="GET /crm/v3/objects/deals")[1])["status"] is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert entry["fault"] and entry["status"] == 200


def test_a_client_that_gives_up_on_a_drip_stops_it(sb: SandboxServer, api: Api) -> None:
    sb.add_fault(action="drip", drip_interval=0.2, object_type="deals")
    with pytest.raises(requests.ReadTimeout):
        # The whole body would take minutes; the client's read time-out never fires between
        # bytes, so only a total deadline ends it: here, closing the connection.
        with api.session.get(f"{sb.url}{DEALS}", stream=True, timeout=5,
                             headers={"Authorization": f"Bearer {api.token}"}) as dripping:
            dripping.raw.read(3)
            raise requests.ReadTimeout("gave up")
    sb.clear_faults()
    # The sandbox is not stuck on the dropped drip: the next call gets its whole answer (a stuck
    # sandbox would fail it with the client's read time-out).
    answer = api.session.get(f"{sb.url}{DEALS}", timeout=5,
                             headers={"Authorization": f"Bearer {api.token}"})
    assert answer.status_code == 200 and answer.json()["results"]


def test_same_rules_same_outcome(sb: SandboxServer, api: Api) -> None:
    rules: list[dict[str, Any]] = [{"object_type": "deals", "status": 503, "every": 2},
                                   {"object_type": "deals", "status": 429, "nth": 3}]
    runs = []
    for _ in range(2):
        sb.set_faults(rules)
        runs.append(statuses(api, 6))
    assert runs[0] == runs[1] == [200, 503, 429, 503, 200, 503]
    counters = {r["id"]: (r["matched"], r["fired"]) for r in sb.faults()}
    assert counters == {"fault-3": (6, 3), "fault-4": (6, 1)}


def test_bad_rules_are_refused(sb: SandboxServer) -> None:
    for rule in ({"action": "explode"}, {"status": 200}, {"nth": 1, "every": 2},
                 {"object_type": "widgets"}, {"colour": "red"}, {"first": 0},
                 {"action": "raw"}, {"raw": 42}, {"raw": "{}", "status": 100},
                 {"action": "status", "raw": "{}"}, {"status": 503, "headers": {"A": 1}},
                 {"status": 503, "headers": ["Retry-After: 0"]},
                 {"action": "drip", "drip_interval": 0}, {"action": "drip", "drip_bytes": 0},
                 {"status": 503, "drip_interval": 1}):
        with pytest.raises(SandboxAdminError):
            sb.set_faults([rule])
    assert sb.faults() == []
    added = sb.add_fault(id="mine", status=500)
    sb.remove_fault(added["id"])
    assert sb.faults() == []
