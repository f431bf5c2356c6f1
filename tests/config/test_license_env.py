"""Where the licence comes from in the environment: TRACARDI_DAEMON_LICENSE, a name
Tracardi does not read, first; LICENSE and API_LICENSE only when they hold a daemon
licence, since one env file for Tracardi's API and the daemon may carry Tracardi's own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.config import test_license
from tests.config.test_license import NOW, make_token
from tracardi_daemon import license as lic
from tracardi_daemon.config.load import load_settings

keys = test_license.keys  # the licence tests' key pair fixture

# the shape of a Tracardi licence: not a daemon token, and no secret in these tests
TRACARDI_OWN = "eyJhbGciOiJIUzI1NiJ9.tracardi-own-licence-value"


def test_daemon_name_is_read(keys: tuple[Path, Path]) -> None:
    private, public = keys
    token = make_token(private, ("scheduler",))
    settings = load_settings({"TRACARDI_DAEMON_LICENSE": token,
                              "TRACARDI_LICENSE_PUBLIC_KEY_FILE": str(public)})
    assert settings.license.token == token
    status = lic.load_status(settings.license, NOW)
    assert status.valid, status.detail


@pytest.mark.parametrize("other", ["LICENSE", "API_LICENSE"])
def test_daemon_name_wins_over_tracardi_names(other: str) -> None:
    environ = {other: "tdl1.from.tracardi-name", "TRACARDI_DAEMON_LICENSE": "tdl1.own.name"}
    assert load_settings(environ).license.token == "tdl1.own.name"


@pytest.mark.parametrize("name", ["LICENSE", "API_LICENSE"])
def test_tracardi_name_with_daemon_licence_still_works(name: str) -> None:
    assert load_settings({name: "tdl1.payload.signature"}).license.token == \
        "tdl1.payload.signature"


def test_license_wins_over_api_license() -> None:
    environ = {"API_LICENSE": "tdl1.api.license", "LICENSE": "tdl1.plain.license"}
    assert load_settings(environ).license.token == "tdl1.plain.license"


@pytest.mark.parametrize("name", ["LICENSE", "API_LICENSE"])
def test_tracardi_own_licence_is_ignored_with_a_warning(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_settings({name: TRACARDI_OWN})
    assert settings.license.token is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and name in warnings[0], warnings
    assert "TRACARDI_DAEMON_LICENSE" in warnings[0]
    assert TRACARDI_OWN not in warnings[0]  # a licence is a secret: never printed


def test_tracardi_own_licence_does_not_hide_an_api_license_daemon_token() -> None:
    environ = {"LICENSE": TRACARDI_OWN, "API_LICENSE": "tdl1.api.license"}
    assert load_settings(environ).license.token == "tdl1.api.license"


def test_tracardi_own_licence_beside_the_daemon_name_is_quiet(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_settings({"LICENSE": TRACARDI_OWN,
                                  "TRACARDI_DAEMON_LICENSE": "tdl1.own.name"})
    assert settings.license.token == "tdl1.own.name"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_quoted_tracardi_names_are_checked_after_unquoting() -> None:
    assert load_settings({"LICENSE": '"tdl1.payload.signature"'}).license.token == \
        "tdl1.payload.signature"
    assert load_settings({"API_LICENSE": f"'{TRACARDI_OWN}'"}).license.token is None


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "daemon.toml"
    config.write_text('[license]\ntoken = "tdl1.from.file"\n', encoding="utf-8")
    environ = {"TRACARDI_CONFIG": str(config)}
    assert load_settings(environ).license.token == "tdl1.from.file"
    assert load_settings({**environ, "TRACARDI_DAEMON_LICENSE": "tdl1.env"}).license.token == \
        "tdl1.env"
    # Tracardi's own licence in LICENSE leaves the file's token in place
    assert load_settings({**environ, "LICENSE": TRACARDI_OWN}).license.token == "tdl1.from.file"
