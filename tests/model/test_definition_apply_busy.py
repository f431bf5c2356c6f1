"""``definitions apply`` against a cluster that refuses writes for now: each item of its
bulk request answered 429 (here by the flood-stage block, which Elasticsearch reports
as TOO_MANY_REQUESTS, as it does a full write queue) is resent with back-off, so the
command succeeds once the cluster takes writes again; still refused, it fails as
"unavailable", never as a bad definition."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment

from .conftest import CliRunner

BLOCK = "index.blocks.read_only_allow_delete"


def segments(path: Path, condition: str) -> Path:
    path.write_text(f'[[segment]]\nid = "s1"\nname = "S"\ncondition = "{condition}"\n',
                    encoding="utf-8")
    return path


@pytest.fixture
def blocked(es: Elasticsearch, settings: Settings, run_cli: CliRunner,
            tmp_path: Path) -> Iterator[str]:
    """The segment index, made by a first apply, then refusing writes with 429."""
    assert run_cli("definitions", "apply",
                   str(segments(tmp_path / "first.toml", "profile@traits.a == 1"))) == 0
    [index] = es.indices.get_alias(index=DefinitionStore(es, settings).source(Segment).alias)
    es.indices.put_settings(index=index, settings={BLOCK: True})
    yield index
    es.indices.put_settings(index=index, settings={BLOCK: None})


def test_an_apply_refused_with_429_goes_through_once_the_cluster_takes_writes(
        es: Elasticsearch, settings: Settings, run_cli: CliRunner, blocked: str,
        tmp_path: Path) -> None:
    refused = es.options(ignore_status=429).index(index=blocked, id="probe", document={})
    assert refused.meta.status == 429  # the block is there
    # the cluster takes writes again while the command waits between its tries
    lifted = threading.Timer(1.0, es.indices.put_settings,
                             kwargs={"index": blocked, "settings": {BLOCK: None}})
    lifted.start()
    try:
        code = run_cli("definitions", "apply",
                       str(segments(tmp_path / "second.toml", "profile@traits.a == 2")))
    finally:
        lifted.join()
    assert code == 0
    stored = DefinitionStore(es, settings).get(Segment, "s1")
    assert stored is not None and stored.condition == "profile@traits.a == 2"


def test_an_apply_still_refused_after_its_retries_says_the_cluster_is_unavailable(
        run_cli: CliRunner, blocked: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli("definitions", "apply",
                   str(segments(tmp_path / "second.toml", "profile@traits.a == 2")))
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "unavailable" in err and "s1" in err and blocked in err, err
