"""Environment values quoted as Tracardi's ``.env-docker`` writes them: ``docker run
--env-file`` keeps the quotes a shell would remove, and both must configure the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config import test_license
from tests.config.test_license import NOW, make_token
from tracardi_daemon import license as lic
from tracardi_daemon.config.env import ENV_OVERRIDES, LICENSE_ENV
from tracardi_daemon.config.load import load_settings
from tracardi_daemon.errors import ConfigError, LicenseError

# one value for every variable the daemon reads, unquoted; REDIS_HOST and ELASTIC_HOST in
# each shape Tracardi's guide uses (TRACARDI_CONFIG needs a file: its own test)
SAMPLES: list[tuple[str, str]] = [
    ("ELASTIC_HOST", "http://elastic:9200"),
    ("ELASTIC_HOST", "http://es1:9200, https://user:pw@es2:9243"),
    ("ELASTIC_HTTP_AUTH_USERNAME", "elastic"),
    ("ELASTIC_HTTP_AUTH_PASSWORD", "s3cret"),
    ("ELASTIC_API_KEY", "aWQ6a2V5=="),
    ("ELASTIC_CA_FILE", "/etc/ssl/es-ca.pem"),
    ("ELASTIC_VERIFY_CERTS", "no"),
    ("REDIS_HOST", "redis"),
    ("REDIS_HOST", "redis://redis:6380"),
    ("REDIS_HOST", "rediss://user:p%40ss@cache.example:6380/4"),
    ("REDIS_PORT", "6380"),
    ("MYSQL_HOST", "mysql.internal"),
    ("MYSQL_PORT", "3307"),
    ("MYSQL_USERNAME", "tracardi"),
    ("MYSQL_PASSWORD", "s3cret"),
    ("MYSQL_DATABASE", "tracardi_prod"),
    ("REDIS_PASSWORD", "pw"),
    ("TENANT_NAME", "shop"),
    ("PROFILE_PARTITIONING", "month"),
    ("EVENT_PARTITIONING", "year"),
    ("SESSION_PARTITIONING", "month"),
    ("TRACARDI_API_URL", "http://tracardi-api:8686"),
    ("LOGGING_LEVEL", "WARNING"),
    ("TRACARDI_DAEMON_LICENSE", "tdl1.payload.signature"),
    ("API_LICENSE", "tdl1.payload.signature"),
    ("LICENSE", "tdl1.payload.signature"),
    ("TRACARDI_LICENSE_PUBLIC_KEY_FILE", "/etc/tracardi-daemon/license-public.pem"),
    ("TRACARDI_ROLES", "scheduler,trigger"),
    ("TRACARDI_HEALTH_SOCKET", "/run/tracardi/health.sock"),
]
QUOTES = ['"', "'"]

keys = test_license.keys  # the licence tests' key pair fixture


def quoted(environ: dict[str, str], quote: str) -> dict[str, str]:
    return {name: f"{quote}{value}{quote}" for name, value in environ.items()}


def test_samples_cover_every_variable() -> None:
    assert {name for name, _ in SAMPLES} == set(ENV_OVERRIDES) | set(LICENSE_ENV)


@pytest.mark.parametrize("quote", QUOTES)
@pytest.mark.parametrize(("name", "value"), SAMPLES)
def test_quoted_value_configures_as_unquoted(name: str, value: str, quote: str) -> None:
    plain = load_settings({name: value})
    assert load_settings(quoted({name: value}, quote)) == plain
    assert plain != load_settings({}), f"{name} changed nothing: a useless sample"


@pytest.mark.parametrize("quote", QUOTES)
def test_tracardi_style_environment(quote: str) -> None:
    environ = {"API_LICENSE": "tdl1.payload.signature", "TRACARDI_ROLES": "scheduler",
               "TENANT_NAME": "shop", "REDIS_HOST": "redis://redis:6379",
               "REDIS_PASSWORD": "pw", "ELASTIC_HOST": "http://elastic:9200",
               "LOGGING_LEVEL": "INFO"}
    settings = load_settings(quoted(environ, quote))
    assert settings == load_settings(environ)
    assert settings.redis.host == "redis" and settings.redis.port == 6379
    assert settings.redis.password == "pw"
    assert settings.elastic.hosts == ("http://elastic:9200",)
    assert settings.daemon.roles == ("scheduler",)
    assert settings.license.token == "tdl1.payload.signature"


@pytest.mark.parametrize("quote", QUOTES)
def test_quoted_redis_url_and_elastic_list_are_parsed(quote: str) -> None:
    settings = load_settings(quoted({
        "REDIS_HOST": "rediss://user:p%40ss@cache.example:6380/4",
        "ELASTIC_HOST": "http://es1:9200,http://es2:9200",
    }, quote))
    redis = settings.redis
    assert (redis.host, redis.port, redis.db, redis.ssl) == ("cache.example", 6380, 4, True)
    assert (redis.username, redis.password) == ("user", "p@ss")
    assert settings.elastic.hosts == ("http://es1:9200", "http://es2:9200")


@pytest.mark.parametrize("quote", QUOTES)
def test_config_file_path_may_be_quoted(quote: str, tmp_path: Path) -> None:
    path = tmp_path / "daemon.toml"
    path.write_text('[tracardi]\ntenant = "acme"\n')
    settings = load_settings({"TRACARDI_CONFIG": f"{quote}{path}{quote}"})
    assert settings.tracardi.tenant == "acme"
    assert settings.source == str(path)


@pytest.mark.parametrize(("environ", "message"), [
    ({"REDIS_HOST": '"redis://cache:99999"'}, "REDIS_HOST: Redis URL 'redis://cache:99999'"),
    ({"REDIS_HOST": "'redis://cache:x'"}, "REDIS_HOST: Redis URL 'redis://cache:x'"),
    ({"REDIS_PORT": '"abc"'}, "'redis.port' (from REDIS_PORT) must be an integer, got 'abc'"),
    ({"REDIS_PORT": "'70000'"}, "'redis.port' (from REDIS_PORT) must be at most 65535"),
    ({"TRACARDI_ROLES": '"nope"'}, "unknown role 'nope' in TRACARDI_ROLES"),
])
def test_error_names_the_variable_and_the_value_without_quotes(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ)
    assert message in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [
    ('"abc', '"abc'),  # one quote: not a pair
    ("abc'", "abc'"),
    ("\"abc'", "\"abc'"),  # two different quotes
    ('"', '"'),
    ('a"b"c', 'a"b"c'),  # quotes inside stay
    ('""abc""', '"abc"'),  # one pair is removed, once
    ("'a\"b'", 'a"b'),
    (' "abc" ', ' "abc" '),  # not at both ends
])
def test_only_one_matching_pair_at_both_ends_is_removed(value: str, expected: str) -> None:
    assert load_settings({"REDIS_PASSWORD": value}).redis.password == expected


def test_empty_quotes_are_an_empty_value() -> None:
    assert load_settings({"REDIS_PASSWORD": '""'}) == load_settings({"REDIS_PASSWORD": ""})


@pytest.mark.parametrize("quote", QUOTES)
@pytest.mark.parametrize("name", ["TRACARDI_DAEMON_LICENSE", "API_LICENSE", "LICENSE"])
def test_quoted_licence_token_loads(name: str, quote: str,
                                    keys: tuple[Path, Path]) -> None:
    private, public = keys
    token = make_token(private, ("scheduler", "trigger"))
    with pytest.raises(LicenseError, match="malformed"):  # what the quotes did before
        lic.verify(f"{quote}{token}{quote}", lic.load_public_key(str(public)), NOW)
    settings = load_settings(quoted({name: token,
                                     "TRACARDI_LICENSE_PUBLIC_KEY_FILE": str(public)}, quote))
    status = lic.load_status(settings.license, NOW)
    assert status.valid, status.detail
    assert status.license is not None and status.license.roles == ("scheduler", "trigger")
