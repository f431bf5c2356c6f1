"""Configuration: precedence, every error path, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracardi_daemon.cli import main
from tracardi_daemon.config.load import Overrides, load_settings
from tracardi_daemon.config.settings import render_settings
from tracardi_daemon.errors import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "daemon.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_file() -> None:
    settings = load_settings({}, Overrides())
    assert settings.daemon.roles == ("upgrade",)
    assert settings.redis.port == 6379
    assert settings.shutdown.grace_s == 20.0
    assert settings.source is None


def test_precedence_defaults_toml_env_cli(tmp_path: Path) -> None:
    path = write(tmp_path, """
[daemon]
roles = ["scheduler"]
health_socket = "/tmp/from-toml.sock"
[redis]
port = 7000
db = 3
[log]
level = "WARNING"
""")
    only_toml = load_settings({}, Overrides(config=path))
    assert only_toml.daemon.roles == ("scheduler",)
    assert only_toml.redis.port == 7000
    env = {"REDIS_PORT": "7001", "TRACARDI_ROLES": "trigger", "LOGGING_LEVEL": "ERROR"}
    with_env = load_settings(env, Overrides(config=path))
    assert with_env.redis.port == 7001
    assert with_env.redis.db == 3  # untouched keys keep the file's value
    assert with_env.daemon.roles == ("trigger",)
    with_cli = load_settings(env, Overrides(config=path, roles="mapping",
                                            health_socket="/tmp/cli.sock", log_level="DEBUG"))
    assert with_cli.daemon.roles == ("mapping",)
    assert with_cli.daemon.health_socket == "/tmp/cli.sock"
    assert with_cli.log.level == "DEBUG"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[tracardi]\ntenant = \"acme\"\n")
    settings = load_settings({"TRACARDI_CONFIG": path})
    assert settings.tracardi.tenant == "acme"
    assert settings.source == path


def test_tracardi_environment_names() -> None:
    env = {
        "ELASTIC_HOST": "https://es1:9200, https://es2:9200",
        "ELASTIC_HTTP_AUTH_USERNAME": "elastic",
        "ELASTIC_HTTP_AUTH_PASSWORD": "s3cret",
        "ELASTIC_VERIFY_CERTS": "no",
        "ELASTIC_CA_FILE": "/etc/ca.pem",
        "REDIS_HOST": "redis.local",
        "REDIS_PASSWORD": "pw",
        "TENANT_NAME": "shop",
        "API_LICENSE": "tdl1.from-api-license",
    }
    settings = load_settings(env)
    assert settings.elastic.hosts == ("https://es1:9200", "https://es2:9200")
    assert settings.elastic.username == "elastic"
    assert settings.elastic.verify_certs is False
    assert settings.elastic.ca_file == "/etc/ca.pem"
    assert settings.redis.host == "redis.local"
    assert settings.redis.password == "pw"
    assert settings.tracardi.tenant == "shop"
    assert settings.license.token == "tdl1.from-api-license"
    assert load_settings({**env, "LICENSE": "tdl1.plain"}).license.token == "tdl1.plain"


def test_redis_host_as_url() -> None:
    settings = load_settings({"REDIS_HOST": "rediss://user:p%40ss@cache.example:6380/4"})
    redis = settings.redis
    assert (redis.host, redis.port, redis.db, redis.ssl) == ("cache.example", 6380, 4, True)
    assert (redis.username, redis.password) == ("user", "p@ss")
    # an explicit REDIS_PORT wins over the URL's port
    assert load_settings({"REDIS_HOST": "redis://h:1234", "REDIS_PORT": "99"}).redis.port == 99


@pytest.mark.parametrize("url, message", [
    ("http://h:6379", "must start with redis://"),
    ("redis://:6379", "has no host"),
    ("redis://h:notaport", "bad port"),
    ("redis://h:6379/x", "database must be a number"),
])
def test_bad_redis_url(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings({"REDIS_HOST": url})
    assert "REDIS_HOST" in str(info.value)


def test_redis_url_password_not_in_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"REDIS_HOST": "redis://u:topsecret@h:6379/x"})
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize("hosts", ["es1:9200", "ftp://es1", "http://es1:port"])
def test_bad_elastic_host(hosts: str) -> None:
    with pytest.raises(ConfigError, match=r"elastic\.hosts"):
        load_settings({"ELASTIC_HOST": hosts})


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[redis]\nprot = 6379\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, Overrides(config=path))
    assert "'prot'" in str(info.value) and path in str(info.value)


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[redsi]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[redsi\]"):
        load_settings({}, Overrides(config=path))


@pytest.mark.parametrize("text, key, expected", [
    ("[redis]\nport = \"6379\"\n", "redis.port", "integer"),
    ("[shutdown]\ngrace_s = \"soon\"\n", "shutdown.grace_s", "number"),
    ("[elastic]\nverify_certs = \"yes\"\n", "elastic.verify_certs", "boolean"),
    ("[daemon]\nroles = \"upgrade\"\n", "daemon.roles", "list of strings"),
    ("[tracardi]\ntenant = 5\n", "tracardi.tenant", "string"),
])
def test_wrong_type_names_key_and_type(tmp_path: Path, text: str, key: str,
                                       expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings({}, Overrides(config=path))
    assert f"'{key}'" in str(info.value) and expected in str(info.value)


def test_wrong_type_from_environment_names_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"REDIS_PORT": "sixty"})
    assert "REDIS_PORT" in str(info.value) and "integer" in str(info.value)


def test_role_aliases_all_and_unknown() -> None:
    assert load_settings({"TRACARDI_ROLES": "migration,post-collection"}).daemon.roles == (
        "upgrade", "mapping")
    assert load_settings({"TRACARDI_ROLES": "import"}).daemon.roles == ("upgrade",)
    assert load_settings({"TRACARDI_ROLES": "all"}).daemon.roles == ("all",)
    with pytest.raises(ConfigError, match="unknown role 'segmenter'") as info:
        load_settings({"TRACARDI_ROLES": "upgrade,segmenter"})
    assert "TRACARDI_ROLES" in str(info.value)


def test_role_tables(tmp_path: Path) -> None:
    path = write(tmp_path, "[role.scheduler]\nthreads = 3\n")
    settings = load_settings({}, Overrides(config=path))
    assert settings.role_threads("scheduler") == 3
    assert settings.role_threads("upgrade") == 1
    bad = write(tmp_path, "[role.sched]\nthreads = 3\n")
    with pytest.raises(ConfigError, match=r"unknown role \[role.sched\]"):
        load_settings({}, Overrides(config=bad))
    zero = write(tmp_path, "[role.upgrade]\nthreads = 0\n")
    with pytest.raises(ConfigError, match=r"role\.upgrade\.threads"):
        load_settings({}, Overrides(config=zero))


def test_range_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"shutdown\.grace_s"):
        load_settings({}, Overrides(config=write(tmp_path, "[shutdown]\ngrace_s = 0\n")))
    with pytest.raises(ConfigError, match=r"scheduler\.lease_s"):
        load_settings({}, Overrides(config=write(
            tmp_path, "[scheduler]\nhorizon_s = 10.0\nlease_s = 5.0\n")))
    with pytest.raises(ConfigError, match=r"log\.format"):
        load_settings({}, Overrides(config=write(tmp_path, "[log]\nformat = \"xml\"\n")))


def test_missing_and_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, Overrides(config=str(tmp_path / "nope.toml")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, Overrides(config=write(tmp_path, "[redis\n")))


def test_secrets_masked_in_rendering() -> None:
    settings = load_settings({"REDIS_PASSWORD": "redis-secret", "ELASTIC_API_KEY": "es-key",
                              "ELASTIC_HTTP_AUTH_PASSWORD": "es-pass", "LICENSE": "tdl1.tok"})
    text = render_settings(settings)
    for secret in ("redis-secret", "es-key", "es-pass", "tok\""):
        assert secret not in text
    assert text.count('"********"') == 4


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "[redis]\npassword = \"hunter2\"\n")
    assert main(["check-config", "--config", good], environ={}) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "[redis]" in out
    bad = write(tmp_path, "[redis]\nhots = \"x\"\n")
    assert main(["check-config", "--config", bad], environ={}) == 2
    assert "'hots'" in capsys.readouterr().err


def test_example_config_file_is_complete_and_valid() -> None:
    """config/tracardi-daemon.toml documents every key and loads as it is."""
    from dataclasses import fields

    from tracardi_daemon.config.load import SECTIONS

    path = Path(__file__).resolve().parents[2] / "config" / "tracardi-daemon.toml"
    settings = load_settings({}, Overrides(config=str(path)))
    text = path.read_text()
    for section, cls in SECTIONS.items():
        assert f"[{section}]" in text, section
        for item in fields(cls):
            assert f"{item.name} =" in text, f"{section}.{item.name} is not documented"
    assert settings.source == str(path)


# --- numbers: finite, in range; the error names the key and where it came from

@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "+inf"])
def test_non_finite_number_in_toml_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, f"[scheduler]\nhorizon_s = {text}\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, Overrides(config=path))
    assert "'scheduler.horizon_s'" in str(info.value) and path in str(info.value)
    assert "finite" in str(info.value)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_non_finite_number_from_text_is_refused(text: str) -> None:
    """Text (environment, options) is parsed by float(), which accepts all of these."""
    from tracardi_daemon.config.env import RawValue
    from tracardi_daemon.config.load import build_settings

    raw = {"scheduler": {"horizon_s": RawValue(text, "SOME_VARIABLE", True)}}
    with pytest.raises(ConfigError) as info:
        build_settings(raw, None)
    assert "'scheduler.horizon_s' (from SOME_VARIABLE)" in str(info.value)
    with pytest.raises(ConfigError, match=r"'redis\.port' \(from REDIS_PORT\)"):
        load_settings({"REDIS_PORT": text})


def test_float_too_large_for_a_float_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"[shutdown]\ngrace_s = {10 ** 400}\n")
    with pytest.raises(ConfigError, match=r"'shutdown\.grace_s'.*finite"):
        load_settings({}, Overrides(config=path))


def test_check_config_exits_2_on_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[scheduler]\nhorizon_s = nan\n")
    assert main(["check-config", "--config", path], environ={}) == 2
    assert "scheduler.horizon_s" in capsys.readouterr().err


def _numeric_keys() -> list[tuple[str, str, type]]:
    """Every int and float key of every section, from the settings themselves."""
    import typing

    from tracardi_daemon.config.load import SECTIONS

    return [(section, key, hint) for section, cls in SECTIONS.items()
            for key, hint in typing.get_type_hints(cls).items() if hint in (int, float)]


_ZERO_ALLOWED = {("startup", "wait_s"), ("daemon", "pool_processes"), ("redis", "db"),
                 ("elastic", "max_retries"), ("mapping", "late_arrival_s"),
                 ("mapping", "max_conflict_retries"), ("segmentation", "max_conflict_retries")}


@pytest.mark.parametrize(("section", "key", "kind"), _numeric_keys())
def test_every_number_refuses_zero_unless_it_means_something(
        tmp_path: Path, section: str, key: str, kind: type) -> None:
    zero = "0.0" if kind is float else "0"
    path = write(tmp_path, f"[{section}]\n{key} = {zero}\n")
    if (section, key) in _ZERO_ALLOWED:
        assert getattr(getattr(load_settings({}, Overrides(config=path)), section), key) == 0
        negative = write(tmp_path, f"[{section}]\n{key} = -1{'.0' if kind is float else ''}\n")
        with pytest.raises(ConfigError, match=rf"'{section}\.{key}'.*at least 0"):
            load_settings({}, Overrides(config=negative))
        return
    with pytest.raises(ConfigError, match=rf"'{section}\.{key}' \(from .*\) must be greater "
                                          "than zero"):
        load_settings({}, Overrides(config=path))


def test_busy_loop_interval_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[supervisor]\nbackend_probe_interval_s = 0\n")
    with pytest.raises(ConfigError, match=r"supervisor\.backend_probe_interval_s"):
        load_settings({}, Overrides(config=path))


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_port_range(port: str) -> None:
    with pytest.raises(ConfigError, match=r"'redis\.port' \(from REDIS_PORT\)"):
        load_settings({"REDIS_PORT": port})
    assert load_settings({"REDIS_PORT": "65535"}).redis.port == 65535


def test_port_zero_from_redis_url_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'redis\.port' \(from REDIS_HOST\)"):
        load_settings({"REDIS_HOST": "redis://cache:0"})


def test_role_threads_must_be_positive(tmp_path: Path) -> None:
    path = write(tmp_path, "[role.scheduler]\nthreads = -2\n")
    with pytest.raises(ConfigError, match=r"'role\.scheduler\.threads'"):
        load_settings({}, Overrides(config=path))


def test_step_budget_must_exceed_dispatch_total_timeout(tmp_path: Path) -> None:
    path = write(tmp_path, "[supervisor]\nstep_budget_s = 10.0\n"
                           "[dispatch]\ntotal_timeout_s = 10.0\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, Overrides(config=path))
    assert "'supervisor.step_budget_s'" in str(info.value)
    assert "'dispatch.total_timeout_s'" in str(info.value)
    ok = write(tmp_path, "[supervisor]\nstep_budget_s = 10.5\n[dispatch]\ntotal_timeout_s = 10.0\n")
    assert load_settings({}, Overrides(config=ok)).supervisor.step_budget_s == 10.5


# --- files that cannot be read as TOML: ConfigError naming the file, never a traceback

@pytest.mark.parametrize("content", [
    b"[redis]\nhost = \"\xff\xfe\"\n",  # not UTF-8
    b"\xef\xbb\xbf\x00\x01\x02",  # control bytes
    b"a = " + b"[" * 100_000 + b"]" * 100_000,  # RecursionError inside tomllib
    b"[redis]\nport = " + b"9" * 5000 + b"\n",  # ValueError: too many digits
])
def test_unreadable_file_names_the_file(tmp_path: Path, content: bytes,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "daemon.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings({}, Overrides(config=str(path)))
    assert str(path) in str(info.value)
    assert main(["check-config", "--config", str(path)], environ={}) == 2
    assert str(path) in capsys.readouterr().err


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings({}, Overrides(config=str(tmp_path)))  # a directory
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings({}, Overrides(config="daemon\x00.toml"))
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_settings({}, Overrides(config=str(big)))


# --- secrets never in errors or in check-config

def test_secret_of_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[redis]\npassword = 123456789\n")
    with pytest.raises(ConfigError, match=r"'redis\.password'.*string") as info:
        load_settings({}, Overrides(config=path))
    assert "123456789" not in str(info.value)


@pytest.mark.parametrize("hosts", ["http://elastic:hunter2@es1:port",
                                   "ftp://elastic:hunter2@es1", "http://elastic:hunter2@[::1"])
def test_bad_elastic_host_error_masks_password(hosts: str) -> None:
    with pytest.raises(ConfigError, match=r"elastic\.hosts") as info:
        load_settings({"ELASTIC_HOST": hosts})
    assert "hunter2" not in str(info.value)


def test_bad_redis_url_without_crash() -> None:
    for url in ("redis://[::1", "redis://u:hunter2@h:99999", "redis://h/\u00b2"):
        with pytest.raises(ConfigError, match="REDIS_HOST") as info:
            load_settings({"REDIS_HOST": url})
        assert "hunter2" not in str(info.value)


def test_check_config_masks_url_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"ELASTIC_HOST": "https://elastic:hunter2@es1:9200,https://es2:9200",
           "TRACARDI_API_URL": "https://api:tok3n@tracardi:8686"}
    assert main(["check-config"], environ=env) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "tok3n" not in out
    assert "es1:9200" in out and "https://es2:9200" in out
    assert 'token = ""  # not set' in out  # an unset secret still shows as unset
