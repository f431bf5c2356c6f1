"""Backend descriptions and errors (health details, log lines) never carry the
credentials of ELASTIC_HOST or REDIS_HOST; real clients, an unreachable port."""

from __future__ import annotations

import elastic_transport
import pytest

from tracardi_daemon.config.load import load_settings
from tracardi_daemon.config.settings import ElasticSettings, RedisSettings
from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.infra import elastic, redis
from tracardi_daemon.runtime.backends import Backends

UNREACHABLE = "http://elastic:hunter2@127.0.0.1:1"  # nothing listens on port 1


def test_elastic_describe_masks_user_info() -> None:
    settings = ElasticSettings(hosts=(UNREACHABLE, "https://es2:9200"))
    assert elastic.describe(settings) == "http://********@127.0.0.1:1, https://es2:9200"


def test_redis_describe_never_shows_credentials() -> None:
    text = redis.describe(RedisSettings(host="user:hunter2@cache", password="pw"))
    assert "hunter2" not in text and "pw" not in text and "cache:6379/0" in text


def test_elastic_probe_error_masks_user_info() -> None:
    settings = ElasticSettings(hosts=(UNREACHABLE,))
    client = elastic.create_elastic(settings)
    try:
        with pytest.raises(BackendUnavailable) as info:
            elastic.probe_elastic(client, settings)
    finally:
        client.close()
    assert "hunter2" not in str(info.value) and "127.0.0.1:1" in info.value.detail


def test_backend_states_for_health_carry_no_credentials() -> None:
    settings = load_settings({"ELASTIC_HOST": UNREACHABLE, "REDIS_HOST": "127.0.0.1"})
    backends = Backends(settings)
    try:
        states = backends.probe_all()
    finally:
        backends.close()
    assert states["redis"].up
    detail = states["elasticsearch"].detail or ""
    assert not states["elasticsearch"].up and "hunter2" not in detail and detail


@pytest.mark.parametrize("error", [
    elastic_transport.ConnectionError(f"cannot connect to {UNREACHABLE}"),
    elastic_transport.ConnectionTimeout(f"timed out: Authorization: Basic ZWxhc3RpYzpodW50ZXIy "
                                        f"at {UNREACHABLE}"),
])
def test_client_exception_text_is_masked(error: Exception) -> None:
    with pytest.raises((BackendUnavailable, BackendError)) as info, \
            elastic.elastic_errors("search events"):
        raise error
    assert "hunter2" not in str(info.value) and "ZWxhc3RpYzpodW50ZXIy" not in str(info.value)
    assert "search events" in str(info.value)
