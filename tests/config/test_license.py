"""Licences: valid, expired, tampered, wrong key, role not granted, upgrade needs none."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracardi_daemon import license as lic
from tracardi_daemon.cli import main
from tracardi_daemon.config.settings import LicenseSettings
from tracardi_daemon.errors import LicenseError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return lic.generate_keypair(str(tmp_path / "keys"))


def make_token(private: Path, roles: tuple[str, ...] = ("scheduler",), days: float = 30,
               now: datetime = NOW) -> str:
    return lic.issue(lic.load_private_key(str(private)), "acme", roles, days, now)


def test_keygen_writes_private_key_with_tight_mode(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert private.stat().st_mode & 0o777 == 0o600
    assert b"PUBLIC KEY" in public.read_bytes()


def test_valid_licence(keys: tuple[Path, Path]) -> None:
    private, public = keys
    token = make_token(private, ("scheduler", "trigger"))
    licence = lic.verify(token, lic.load_public_key(str(public)), NOW + timedelta(days=1))
    assert licence.licensee == "acme"
    assert licence.roles == ("scheduler", "trigger")
    assert licence.expires == NOW + timedelta(days=30)
    assert licence.grants("trigger") and licence.grants("upgrade")
    assert not licence.grants("mapping")


def test_expired(keys: tuple[Path, Path]) -> None:
    private, public = keys
    token = make_token(private, days=1)
    with pytest.raises(LicenseError, match="expired on 2026-06-02"):
        lic.verify(token, lic.load_public_key(str(public)), NOW + timedelta(days=2))


def test_tampered_payload(keys: tuple[Path, Path]) -> None:
    private, public = keys
    prefix, body, signature = make_token(private).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["roles"] = ["scheduler", "segmentation", "mapping", "trigger"]
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(LicenseError, match="altered"):
        lic.verify(f"{prefix}.{forged}.{signature}", lic.load_public_key(str(public)), NOW)


def test_wrong_key(keys: tuple[Path, Path], tmp_path: Path) -> None:
    private, _ = keys
    _, other_public = lic.generate_keypair(str(tmp_path / "other"))
    with pytest.raises(LicenseError, match="signed by another key"):
        lic.verify(make_token(private), lic.load_public_key(str(other_public)), NOW)


@pytest.mark.parametrize("token", ["", "garbage", "tdl1.abc", "xx.a.b", "tdl1.!!!.abc",
                                   "tdl1.eyJ4IjogMX0.abc"])
def test_malformed(token: str, keys: tuple[Path, Path]) -> None:
    with pytest.raises(LicenseError, match="malformed"):
        lic.verify(token, lic.load_public_key(str(keys[1])), NOW)


def test_status_role_refusals(keys: tuple[Path, Path]) -> None:
    private, public = keys
    settings = LicenseSettings(token=make_token(private, ("scheduler",)),
                               public_key_file=str(public))
    status = lic.load_status(settings, NOW)
    assert status.valid
    assert status.refusal("scheduler") is None
    assert status.refusal("upgrade") is None
    refusal = status.refusal("segmentation")
    assert refusal is not None and "does not grant role 'segmentation'" in refusal


def test_status_without_licence_allows_only_upgrade() -> None:
    status = lic.load_status(LicenseSettings(), NOW)
    assert not status.valid
    assert status.refusal("upgrade") is None
    assert status.refusal("scheduler") == "no licence: set TRACARDI_DAEMON_LICENSE or license.file"


def test_status_without_public_key(keys: tuple[Path, Path]) -> None:
    status = lic.load_status(LicenseSettings(token=make_token(keys[0])), NOW)
    assert not status.valid and "public key" in (status.detail or "")


def test_status_from_file(keys: tuple[Path, Path], tmp_path: Path) -> None:
    token_file = tmp_path / "licence.txt"
    token_file.write_text(make_token(keys[0]) + "\n")
    status = lic.load_status(LicenseSettings(file=str(token_file),
                                             public_key_file=str(keys[1])), NOW)
    assert status.valid
    missing = lic.load_status(LicenseSettings(file=str(tmp_path / "none.txt"),
                                              public_key_file=str(keys[1])), NOW)
    assert "cannot read licence file" in (missing.detail or "")


def test_unknown_role_cannot_be_issued(keys: tuple[Path, Path]) -> None:
    with pytest.raises(LicenseError, match="unknown role"):
        make_token(keys[0], ("scheduler", "teleport"))


def test_cli_keygen_issue_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "k"
    assert main(["license", "keygen", "--out", str(out_dir)], environ={}) == 0
    assert main(["license", "issue", "--key", str(out_dir / "license-private.pem"),
                 "--roles", "all", "--days", "10", "--licensee", "dev"], environ={}) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    env = {"TRACARDI_LICENSE_PUBLIC_KEY_FILE": str(out_dir / "license-public.pem")}
    assert main(["license", "show", token], environ=env) == 0
    shown = capsys.readouterr().out
    assert "licensee: dev" in shown and "status:   valid" in shown
    assert "segmentation" in shown
    assert main(["license", "show", token + "x"], environ=env) == 3
    assert "NOT VALID" in capsys.readouterr().out
