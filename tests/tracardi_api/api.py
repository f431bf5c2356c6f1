"""Finding, starting and driving Tracardi's API: what ``scripts/services tracardi-info``
says about it, a logged-in client, and the bounded waits its refresh intervals need."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services"
# /track answers 401 to a bot-like User-Agent (httpx's and Python's defaults are)
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0 Safari/537.36")
# the REST bridge Tracardi's /install creates (tracardi/service/setup/data/defaults.py)
REST_BRIDGE = {"id": "778ded05-4ff3-4e08-9a86-72c0195fa95d", "name": "REST API Bridge"}
T = TypeVar("T")


@dataclass(frozen=True)
class ApiService:
    """Where the API listens and what it was started from (tracardi-info's lines)."""

    url: str
    tenant: str
    env_file: Path
    admin_file: Path
    home: Path
    python: Path
    version: str = "0.8.2"
    # 0.9 keeps its definitions in MySQL: host, port, database, user, password
    mysql: dict[str, str] = field(default_factory=dict)

    @classmethod
    def describe(cls, version: str = "0.8.2") -> ApiService:
        out = services("tracardi-info", "--version", version, timeout_s=30).stdout
        info = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        mysql = {key.removeprefix("TRACARDI_API_MYSQL_").lower(): value
                 for key, value in info.items() if key.startswith("TRACARDI_API_MYSQL_")}
        return cls(url=info["TRACARDI_API_URL"], tenant=info["TRACARDI_API_TENANT"],
                   env_file=Path(info["TRACARDI_API_ENV_FILE"]),
                   admin_file=Path(info["TRACARDI_API_ADMIN_FILE"]),
                   home=Path(info["TRACARDI_API_HOME"]), python=Path(info["TRACARDI_API_PYTHON"]),
                   version=info["TRACARDI_API_VERSION"], mysql=mysql)

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthcheck", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def env(self) -> dict[str, str]:
        """The environment the API was started with (one KEY=value a line)."""
        return read_env_file(self.env_file)

    def login(self) -> ApiClient:
        admin = read_env_file(self.admin_file)
        return ApiClient.login(self.url, admin["TRACARDI_API_ADMIN"],
                               admin["TRACARDI_API_PASSWORD"], version=self.version)


def services(*argv: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SERVICES), *argv], capture_output=True, text=True,
                          timeout=timeout_s, check=False, stdin=subprocess.DEVNULL)


def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


class ApiClient:
    """Tracardi's API as its GUI uses it: a bearer token for the admin endpoints, and the
    public /track with a browser's User-Agent."""

    def __init__(self, url: str, token: str, version: str = "0.8.2") -> None:
        self.version, self.url, self.token = version, url, token
        self.http = httpx.Client(base_url=url, timeout=30, headers={
            "Authorization": f"Bearer {token}", "User-Agent": BROWSER})

    @classmethod
    def login(cls, url: str, username: str, password: str,
              version: str = "0.8.2") -> ApiClient:
        answer = httpx.post(f"{url}/user/token", data={"username": username,
                                                       "password": password}, timeout=30)
        assert answer.status_code == 200, f"login: {answer.status_code} {answer.text[:200]}"
        return cls(url, str(answer.json()["access_token"]), version)

    def close(self) -> None:
        self.http.close()

    def production(self) -> ApiClient:
        """The same login in the production context (``x-context: production``: the
        ``prod-`` indices); close it too."""
        client = ApiClient(self.url, self.token, self.version)
        client.http.headers["x-context"] = "production"
        return client

    def post(self, path: str, body: dict[str, Any] | list[Any]) -> Any:
        answer = self.http.post(path, json=body)
        assert answer.status_code == 200, f"POST {path}: {answer.status_code} {answer.text[:300]}"
        return answer.json()

    def save(self, path: str, body: dict[str, Any]) -> None:
        """POST a definition and check it was saved: 0.8.2 answers ``{"saved": 1, ...}``
        (Elasticsearch's count), 0.9 the id of the row it wrote to MySQL."""
        answer = self.post(path, body)
        saved = answer == body["id"] if self.version == "0.9" else answer.get("saved") == 1
        assert saved, f"POST {path} of {body['id']!r}: {str(answer)[:200]}"

    def delete(self, path: str) -> int:
        return self.http.delete(path).status_code

    def profile(self, profile_id: str) -> httpx.Response:
        return self.http.get(f"/profile/{profile_id}")

    def add_rest_source(self, source_id: str) -> None:
        self.save("/event-source", {"id": source_id, "name": source_id, "type": ["rest"],
                                    "bridge": REST_BRIDGE})

    def track(self, source_id: str, session_id: str, events: list[dict[str, Any]],
              profile_id: str | None = None) -> str:
        """POST /track as a browser's tracker does; the id of the profile it used."""
        body: dict[str, Any] = {"source": {"id": source_id}, "session": {"id": session_id},
                                "events": events, "options": {}}
        if profile_id is not None:
            body["profile"] = {"id": profile_id}
        result = self.post("/track", body)
        # 0.8.1's answer has no "errors" (task, ux, response, profile only)
        assert result.get("errors", []) == [], result["errors"]
        return str(result["profile"]["id"])


def unique(kind: str) -> str:
    """A new id for something a test makes in the shared installation; lower case, as
    Tracardi 0.8.2 lower-cases the ids of what its GUI names."""
    return f"td-{kind}-{uuid.uuid4().hex[:10]}"


def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float = 40.0) -> T:
    """Poll ``probe`` until it gives a value; Tracardi's indices refresh every 1 s
    (profiles) and 10 s (events), so its reads lag its writes by up to that."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.25)
