"""Masking of secrets in anything the daemon shows: URLs with user info, tokens,
passwords. One place, used by logs, health, metrics, check-config and the CLI."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "********"
_MAX_JSON_DEPTH = 100  # of a structure shown by mask_json; deeper parts are elided

# scheme://userinfo@ : the user info of any URL inside a longer text. Greedy up to the
# last '@' of the authority, as urlsplit reads it, so a password holding '@' is masked
# whole; the authority ends at '/', '?', '#', whitespace, '"', '<' or '>' (a password
# may hold "'", so a quoted URL followed by an address may be over-masked, never under).
# The look-behind and possessive quantifiers keep long texts linear.
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*+://)(?P<userinfo>[^\s/?#\"<>]+)@")
# a name that says its value is a secret; "auth" only as a whole word part (http_auth,
# auth_token), not "author" or "authentication"
_SENSITIVE_WORDS = (r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
                r"authorization|auth(?![a-z]))")
# key=value, key: value, "key": "value", 'key': 'value' where the key names a secret
# (query strings, headers, JSON, Python reprs). The key's tail is bounded so that a long
# run of key words costs linear time.
_SECRET_PAIR = re.compile(
    rf"(?P<key>{_SENSITIVE_WORDS}\w{{0,64}}+)"
    r"(?P<sep>[\"']?\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\([^)]*\)|[^\s\"'&,;}\]]+)",
    re.IGNORECASE)
_SECRET_KEY = re.compile(_SENSITIVE_WORDS, re.IGNORECASE)
# an Authorization header's credentials after its scheme word
_SCHEMES = ("bearer", "basic", "token", "apikey")
# (starting with a letter or digit: "token = x" is a key and its value, not a header)
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>Bearer|Basic|Token|ApiKey)\s+[A-Za-z0-9][A-Za-z0-9._~+/=-]*+",
    re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with its user info (user and password) masked, if it has any."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return mask_text(url)
    if "@" not in parts.netloc:
        return mask_text(url)
    host = parts.netloc.rpartition("@")[2]
    return mask_text(urlunsplit(parts._replace(netloc=f"{MASK}@{host}")))


def mask_text(text: str) -> str:
    """``text`` with every URL's user info and every secret-named value masked."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {MASK}", text)
    return _SECRET_PAIR.sub(_mask_pair, text)


def mask_json(value: Any, depth: int = 0) -> Any:
    """A copy of decoded JSON (dicts, lists, scalars) fit to show: every string passed
    through ``mask_text``, the value of a secret-named key masked. Unlike masking the
    encoded text, the result still encodes to valid JSON."""
    if isinstance(value, str):
        return mask_text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    if depth >= _MAX_JSON_DEPTH:
        return f"<nested deeper than {_MAX_JSON_DEPTH} levels>"
    if isinstance(value, dict):
        return {mask_text(str(key)): _mask_entry(str(key), item, depth + 1)
                for key, item in value.items()}
    return [mask_json(item, depth + 1) for item in value]


def _mask_entry(key: str, value: Any, depth: int) -> Any:
    secret_scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
    if secret_scalar and value != "" and _SECRET_KEY.search(key):
        return MASK
    return mask_json(value, depth)


def _mask_pair(match: re.Match[str]) -> str:
    value = match["value"]
    if value.lower() in _SCHEMES or value.strip("\"'") in ("", MASK):
        # "Authorization: Basic ********" keeps its scheme word; an empty value
        # (password = "") is shown as unset, not as a secret
        return match[0]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{match['sep']}{quote}{MASK}{quote}"
