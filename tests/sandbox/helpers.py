"""Test helpers for the sandbox's tests."""

from __future__ import annotations

from typing import Any

import requests


class Api:
    """A bearer-authenticated HTTP client of the sandbox's HubSpot API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.session = requests.Session()

    def request(self, method: str, path: str, token: str | None = None,
                **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.url}{path}", headers=headers, timeout=30,
                                    **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def search(self, object_type: str, /, **body: Any) -> requests.Response:
        return self.post(f"/crm/v3/objects/{object_type}/search", json=body)

    def list_all(self, object_type: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a type through the list endpoint's cursor paging."""
        found: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 100, **params}
        while True:
            response = self.get(f"/crm/v3/objects/{object_type}", params=query)
            assert response.status_code == 200, response.text
            body = response.json()
            found.extend(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                return found
            query["after"] = after
