"""Masking of secrets: URL user info, secret-named values, Authorization credentials,
and decoded JSON; never a secret left, never quadratic time."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracardi_daemon.redact import MASK, mask_json, mask_text, mask_url


@pytest.mark.parametrize(("url", "expected"), [
    ("http://user:pw@es:9200", f"http://{MASK}@es:9200"),
    ("https://user@es:9200/path", f"https://{MASK}@es:9200/path"),
    ("redis://:pw@cache:6379/0", f"redis://{MASK}@cache:6379/0"),
    ("http://u:p@ss@es:9200/x", f"http://{MASK}@es:9200/x"),  # '@' inside the password
    ("http://u:p@h/x?password=y&a=1", f"http://{MASK}@h/x?password={MASK}&a=1"),
    ("http://es:9200", "http://es:9200"),
    ("http://[::1", "http://[::1"),  # not parseable: left as it is, without a crash
])
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("cannot reach 'http://elastic:s3cret@es1:9200', retrying",
     f"cannot reach 'http://{MASK}@es1:9200', retrying"),
    ("webhook:https://u:p@hooks.example/x", f"webhook:https://{MASK}@hooks.example/x"),
    ("Authorization: Basic dXNlcjpwdw==", f"Authorization: Basic {MASK}"),
    ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {MASK}"),
    ('{"Authorization": "Bearer abc"}', f'{{"Authorization": "{MASK}"}}'),
    ('{"password": "two words", "user": "bob"}', f'{{"password": "{MASK}", "user": "bob"}}'),
    ("{'api_key': 'k 1'}", f"{{'api_key': '{MASK}'}}"),
    ("ELASTIC_HTTP_AUTH_PASSWORD=pw other=1", f"ELASTIC_HTTP_AUTH_PASSWORD={MASK} other=1"),
    ("basic_auth=('elastic', 'pw')", f"basic_auth={MASK}"),
    ("token abc123", f"token {MASK}"),
    ('password = ""  # not set', 'password = ""  # not set'),  # unset stays visible
    ('token = ""  # not set', 'token = ""  # not set'),
    ('token = "abc"', f'token = "{MASK}"'),
    ("author: Jane, authentication failed", "author: Jane, authentication failed"),
    ("mail bob@example.com, see http://host/a@b", "mail bob@example.com, see http://host/a@b"),
])
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_mask_json_masks_strings_and_secret_keys_and_stays_json() -> None:
    shown = mask_json({"target": "webhook:https://u:hunter2@h/x", "password": None,
                       "token": "abc", "nested": [{"api_key": 5, "tokens": ""}],
                       "note": "Authorization: Bearer xyz"})
    assert shown == {"target": f"webhook:https://{MASK}@h/x", "password": None,
                     "token": MASK, "nested": [{"api_key": MASK, "tokens": ""}],
                     "note": f"Authorization: Bearer {MASK}"}


def test_mask_json_elides_what_nests_too_deep() -> None:
    deep: Any = "http://u:hunter2@h"
    for _ in range(500):
        deep = [deep]
    text = json.dumps(mask_json(deep))
    assert "hunter2" not in text and "nested deeper than" in text


_PASSWORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~!$&'()*+,;=%@",
                    min_size=6, max_size=20).filter(lambda p: not p.startswith("@"))
_FILLER = st.text(max_size=40)


@settings(max_examples=300)
@given(user=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), password=_PASSWORD,
       scheme=st.sampled_from(["http", "https", "redis", "rediss"]),
       before=_FILLER, after=_FILLER)
def test_no_url_password_survives(user: str, password: str, scheme: str, before: str,
                                  after: str) -> None:
    url = f"{scheme}://{user}:{password}@host.example:9200/path"
    for text in (url, f"{before} {url} {after}", f"{before}'{url}'{after}"):
        masked = mask_text(text)
        assert f"{user}:{password}" not in masked
        assert mask_text(masked) == masked  # masking again changes nothing
    assert f"{user}:{password}" not in mask_url(url)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.sampled_from(["http://u:pw@h", "password=x", "Bearer t", "'", '"', "\\"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=10) | st.sampled_from(["password", "token", "auth"]), inner,
        max_size=3),
    max_leaves=12)


@settings(max_examples=300)
@given(_JSON)
def test_mask_json_output_is_always_json(value: Any) -> None:
    encoded = json.dumps(mask_json(value))
    json.loads(encoded)
    assert ":pw@" not in encoded


@pytest.mark.parametrize("text", [
    "a" * 200_000, "password" * 50_000, 'password="' * 50_000, "Bearer " * 50_000,
    "http://" + "a" * 200_000, "http://a" * 30_000 + "@",
])
def test_long_texts_take_linear_time(text: str) -> None:
    """A log line carrying a big payload must not stall the thread that logs it."""
    started = time.monotonic()
    mask_text(text)
    assert time.monotonic() - started < 2.0
