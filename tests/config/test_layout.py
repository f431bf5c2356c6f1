"""tracardi.layout at load: the db_version must be one of the layout, and the tenant
defaults as Tracardi's does when neither the file nor TENANT_NAME sets it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracardi_daemon.config.load import load_settings
from tracardi_daemon.errors import ConfigError
from tracardi_daemon.model.naming import index_name


def _config(tmp_path: Path, body: str) -> dict[str, str]:
    path = tmp_path / "daemon.toml"
    path.write_text(body)
    return {"TRACARDI_CONFIG": str(path)}


@pytest.mark.parametrize(("layout", "version", "tenant"), [
    ("tracardi-0.8", "08x", "01506"), ("tracardi-0.8", "0820", "ffe49"),
    ("tracardi-0.9", "09x", None)])
def test_the_tenant_defaults_to_tracardis_md5_of_the_version(
        tmp_path: Path, layout: str, version: str, tenant: str | None) -> None:
    env = _config(tmp_path, f'[tracardi]\nlayout = "{layout}"\ndb_version = "{version}"\n')
    loaded = load_settings(env).tracardi
    assert len(loaded.tenant) == 5 and loaded.tenant != "tracardi"
    if tenant is not None:  # the tenants the reference names for 0.8.1 and 0.8.2
        assert loaded.tenant == tenant
    assert load_settings({**env, "TENANT_NAME": "shop"}).tracardi.tenant == "shop"


def test_a_configured_tenant_and_the_daemon_layout_keep_theirs(tmp_path: Path) -> None:
    env = _config(tmp_path, '[tracardi]\nlayout = "tracardi-0.8"\ndb_version = "08x"\n'
                            'tenant = "acme"\n')
    assert load_settings(env).tracardi.tenant == "acme"
    assert load_settings(_config(tmp_path, "")).tracardi.tenant == "tracardi"


@pytest.mark.parametrize(("layout", "version"), [
    ("tracardi-0.8", "100"), ("tracardi-0.8", "09x"), ("tracardi-0.9", "08x")])
def test_a_db_version_of_another_layout_is_refused_at_load(
        tmp_path: Path, layout: str, version: str) -> None:
    env = _config(tmp_path, f'[tracardi]\nlayout = "{layout}"\ndb_version = "{version}"\n')
    with pytest.raises(ConfigError, match=f"'{version}' is not a version of layout"):
        load_settings(env)


def test_an_unknown_layout_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'tracardi\.layout' must be one of"):
        load_settings(_config(tmp_path, '[tracardi]\nlayout = "tracardi-1.0"\n'))


def test_tracardis_own_partitioning_variables_choose_the_partitions(tmp_path: Path) -> None:
    env = _config(tmp_path, '[tracardi]\nlayout = "tracardi-0.8"\ndb_version = "0820"\n'
                            'tenant = "acme"\n')
    when = datetime(2024, 3, 5, tzinfo=UTC)
    default = load_settings(env).tracardi
    assert index_name(default, "profile", when) == "0820.acme.tracardi-profile-2024-q1"
    changed = load_settings({**env, "PROFILE_PARTITIONING": "month",
                             "EVENT_PARTITIONING": '"year"'}).tracardi
    assert index_name(changed, "profile", when) == "0820.acme.tracardi-profile-2024-3"
    assert index_name(changed, "event", when) == "0820.acme.tracardi-event-2024-year"
    assert index_name(changed, "session", when) == "0820.acme.tracardi-session-2024-q1"
    with pytest.raises(ConfigError, match=r"'tracardi\.event_partitioning' must be"):
        load_settings({**env, "EVENT_PARTITIONING": "day"})
