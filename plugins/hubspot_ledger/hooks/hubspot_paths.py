"""Every HubSpot API path the hooks call, for the deployment's API version (hubspot-api.md §0).

HubSpot publishes its APIs under date versions (`/crm/objects/2026-03/deals`,
`/crm/associations/2026-03/…`, `/oauth/2026-03/token`, `/account-info/2026-03/details`) beside
the legacy `/crm/v3`, `/crm/v4` (associations), `/oauth/v3` and `/account-info/v3` paths, with
the same request and answer bodies; its newest docs show only the dated forms. Which family a
deployment calls is its setting: the `api_version` extra of the `hubspot_default` connection,
default `DEFAULT_API_VERSION` (the newest dated version the project is tested against); `v3`
keeps the legacy paths. Nothing else in the code spells a HubSpot path.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk.exceptions import AirflowFailException

from hubspot_ledger.hooks.hubspot_errors import HubSpotError

LEGACY = "v3"
# Dated versions the project is tested against (the sandbox serves them), newest last.
DATED_VERSIONS = ("2026-03",)
DEFAULT_API_VERSION = DATED_VERSIONS[-1]
API_VERSIONS = (*DATED_VERSIONS, LEGACY)


class UnknownApiVersion(HubSpotError, AirflowFailException):
    """An `api_version` this code does not know. No integration is at fault and no retry can
    succeed (like `HubSpotAppRejected`): an operator fixes `hubspot_default`, and a task that
    lets it through fails at once."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"The api_version extra of the hubspot_default connection is {str(value)[:40]!r}, "
            "which this "
            f"deployment does not know: use one of {', '.join(API_VERSIONS)} (default "
            f"{DEFAULT_API_VERSION}; v3 calls HubSpot's legacy /crm/v3, /crm/v4 and /oauth/v3 "
            "paths)", code="UNKNOWN_API_VERSION")
        self.value = value


@dataclass(frozen=True)
class ApiPaths:
    """The paths of one API version. Build it with `api_paths`, which checks the version."""

    version: str

    @property
    def dated(self) -> bool:
        return self.version != LEGACY

    def objects(self, object_type: str) -> str:
        """The objects API of a type: its list (`GET`); `/search` and `/batch/read` below it."""
        if self.dated:
            return f"/crm/objects/{self.version}/{object_type}"
        return f"/crm/v3/objects/{object_type}"

    def search(self, object_type: str) -> str:
        return f"{self.objects(object_type)}/search"

    def batch_read(self, object_type: str) -> str:
        return f"{self.objects(object_type)}/batch/read"

    def associations_batch_read(self, from_type: str, to_type: str) -> str:
        """The association batch read (v4's, whose answer the dated one keeps)."""
        base = (f"/crm/associations/{self.version}" if self.dated
                else "/crm/v4/associations")
        return f"{base}/{from_type}/{to_type}/batch/read"

    def pipelines(self, object_type: str) -> str:
        """A type's pipelines. The reference names no dated pipelines path (hubspot-api.md §5
        lists the v3 spec only), so every version calls the v3 one until HubSpot's dated path
        is confirmed."""
        return f"/crm/v3/pipelines/{object_type}"

    @property
    def token(self) -> str:
        """The token endpoint (v3 and the dated ones take every parameter in the form body;
        v1 is sunset on 2027-02-16 and never called)."""
        return f"/oauth/{self.version}/token"

    @property
    def introspect(self) -> str:
        return f"{self.token}/introspect"

    @property
    def account_details(self) -> str:
        return f"/account-info/{self.version}/details"


def api_paths(version: object = None) -> ApiPaths:
    """The paths of `version` (None or empty: the default); UnknownApiVersion if unknown."""
    if version is None or version == "":
        return ApiPaths(DEFAULT_API_VERSION)
    if not isinstance(version, str) or version.strip() not in API_VERSIONS:
        raise UnknownApiVersion(version)
    return ApiPaths(version.strip())
