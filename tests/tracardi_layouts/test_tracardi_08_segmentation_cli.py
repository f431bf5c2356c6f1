"""Layout tracardi-0.8: ``segmentation plan`` and ``status`` report the path a pass
really takes. Tracardi maps a new trait string as analysed text, which a term query
cannot match, so a condition on it is evaluated in Python, and the commands say so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tests.tracardi_layouts.test_tracardi_08_definitions import config_file, put
from tracardi_daemon.cli import main

__all__ = ["config_file"]


@pytest.fixture
def tracardi(elastic_client: Elasticsearch, prefix: str) -> Iterator[TracardiInstall]:
    install = install_tracardi_elastic(elastic_client, "0820", prefix)
    yield install
    install.drop()


def test_a_condition_on_a_text_trait_is_reported_on_the_python_path(
        tracardi: TracardiInstall, config_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    profile = docs.profile_document("0820", "p1", traits={"level": "Top Tier", "orders": 5})
    tracardi.elastic.index(index=tracardi.indices["profile"].write_index, id="p1",
                           document=profile, refresh=True)
    put(tracardi, "segment",
        docs.segment_document("Top", 'profile@traits.level == "Top Tier"'),
        docs.segment_document("Many", "profile@traits.orders > 3"))
    config = ["--config", str(config_file)]

    assert main(["segmentation", "plan", "segment-top", *config], environ={}) == 0
    shown = capsys.readouterr().out
    assert "path: python: the profile index's mapping cannot answer" in shown, shown
    assert "python: {'match_all': {}}" in shown
    assert main(["segmentation", "plan", "segment-many", *config], environ={}) == 0
    assert "path: elasticsearch: compiled to a query" in capsys.readouterr().out

    assert main(["segmentation", "status", *config], environ={}) == 0
    rows = {line.split()[0]: line.split()[3] for line in
            capsys.readouterr().out.splitlines()[1:] if line.strip()}
    assert rows == {"top": "python", "many": "elasticsearch"}
