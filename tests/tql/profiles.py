"""Profiles and conditions for the agreement test.

The mapping is explicit, as a Tracardi profile index's is after its fields have been
seen once: every field has one type, so the generated values of a field are the values
that type accepts (numbers and decimal strings for a number, ISO strings for a date,
...), plus, where the mapping sets ignore_malformed, values it ignores.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tracardi_daemon.tql import Schema

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def _t(es_type: str, **options: Any) -> dict[str, Any]:
    return {"type": es_type, **options}


def _obj(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"properties": properties}


MAPPING: dict[str, Any] = {
    "dynamic": False,
    "date_detection": False,
    "properties": {
        "id": _t("keyword"),
        "batch": _t("keyword"),  # the test's own: which example a document belongs to
        "active": _t("boolean"),
        "segments": _t("keyword"),
        "metadata": _obj(time=_obj(
            insert=_t("date"),
            visit=_obj(last=_t("date"), count=_t("integer", ignore_malformed=True)),
        )),
        "stats": _obj(views=_t("long", ignore_malformed=True)),
        "data": _obj(
            pii=_obj(firstname=_t("keyword"), birthday=_t("date", ignore_malformed=True)),
            contact=_obj(email=_obj(main=_t("keyword"))),
        ),
        "traits": _obj(
            age=_t("double"),
            score=_t("double", ignore_malformed=True),
            city=_t("keyword"),
            code=_t("keyword", ignore_above=4),
            tags=_t("keyword"),
            vip=_t("boolean"),
            last_purchase=_t("date"),
            orders=_obj(sku=_t("keyword"), qty=_t("double")),
        ),
        "aux": _t("flattened"),
        "misc": {"type": "object", "enabled": False},
    },
}

SCHEMA = Schema.from_mappings(profile=MAPPING)

# -- stored values, per field type ------------------------------------------------------

_WORDS = ["", "a", "A", "ab", "abc", "abcd", "abcde", "b", "Warsaw", "warsaw", "10", "9",
          "010", "10.0", "a b", "ą", "zz", "*", "a*", "?", "a\\b", "vip", "Vip", "é€"]
words = st.one_of(st.sampled_from(_WORDS), st.text(alphabet="abAB 19*?\\ąé", max_size=6))
_numbers = st.one_of(
    st.sampled_from([0, 1, 2.5, 10, 10.5, -3, 18, 30, 99.9, 1e20]),
    st.integers(-50, 50),
    # -0.0 is excluded: Elasticsearch orders it below 0.0 (see README, limits)
    st.floats(-1000, 1000, allow_nan=False).filter(lambda x: x != 0 or str(x) == "0.0"),
)
_decimal_strings = st.sampled_from(["10", "10.5", "-3", "1e1", " 7 ", "+5", ".5", "5.", ""])
numbers = st.one_of(_numbers, _decimal_strings)
malformed_numbers = st.one_of(numbers, st.sampled_from(["abc", "n/a", "0x10", "1_0"]))
integers = st.one_of(st.integers(-5, 40),
                     st.sampled_from([2.7, -2.5, -0.9, "3", "2.7", "1e1", " 7 ", " 2.7 ", "\t8\n",
                                      "", " ", "abc", 2147483647.9, "2147483648", 3e9]))
longs = st.one_of(st.integers(-5, 40), st.integers(-(2**63), 2**63 - 1),
                  st.sampled_from([2.7, "3", "2.7", " 7 ", "1e1", "9223372036854775808",
                                   9.3e18, "12345678901234567.5", "", "abc"]))
booleans = st.one_of(st.booleans(), st.sampled_from(["true", "false", ""]))


def _date_text(moment: datetime, style: int) -> str | int:
    if style == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"
    if style == 2:
        shifted = moment.astimezone(timezone(timedelta(hours=2)))
        return shifted.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00"
    if style == 3:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")  # no offset: UTC
    if style == 4:
        return moment.strftime("%Y-%m-%d")
    if style == 5:
        return moment.strftime("%Y-%m-%dT%H:%M")
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


_EDGE_DATES = ["2024-05-02T12:00:00Z", "2024-06-01T12:00:00.000Z", "2024-01-01",
               "2024-01-01T00:00:00", "2024-01-01T01:00:00+01:00", "2024-06-01T11:59:59.9999Z",
               "2024-03", "2024-05-31T12:00:00.001Z", "2024-01-02T00:00:00+00:00"]
dates = st.one_of(
    st.sampled_from(_EDGE_DATES),
    st.builds(_date_text,
              st.datetimes(datetime(2023, 1, 1), datetime(2025, 1, 1), timezones=st.just(UTC)),
              st.integers(0, 6)),
)
malformed_dates = st.one_of(dates, st.sampled_from(["n/a", "01/02/2024", ""]))


def _maybe_many(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, null, or a list of values (with nulls) as JSON allows."""
    return st.one_of(values, st.none(), st.lists(st.one_of(values, st.none()), max_size=3))


_MISSING = object()


def _some(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object whose keys are each present three times in four (shrinking removes them)."""
    maybe = {name: st.one_of(st.just(_MISSING), values, values, values)
             for name, values in fields.items()}
    return st.fixed_dictionaries(maybe).map(
        lambda drawn: {name: value for name, value in drawn.items() if value is not _MISSING})


orders = st.lists(_some(sku=_maybe_many(words), qty=_maybe_many(numbers)), max_size=3)
profiles = _some(
    active=_maybe_many(booleans),
    segments=_maybe_many(st.sampled_from(["vip", "new", "churn", "Vip", ""])),
    metadata=_some(time=_some(
        insert=dates,
        visit=_some(last=_maybe_many(dates), count=_maybe_many(integers)),
    )),
    stats=_some(views=_maybe_many(longs)),
    data=_some(
        pii=_some(firstname=_maybe_many(words), birthday=_maybe_many(malformed_dates)),
        contact=_some(email=_some(main=_maybe_many(words))),
    ),
    traits=st.one_of(st.none(), _some(
        age=_maybe_many(numbers), score=_maybe_many(malformed_numbers),
        city=_maybe_many(words), code=_maybe_many(words), tags=_maybe_many(words),
        vip=_maybe_many(booleans), last_purchase=_maybe_many(dates),
        orders=st.one_of(orders, st.none()),
    )),
    aux=_some(a=_maybe_many(st.one_of(words, st.integers(0, 20), st.booleans())),
              b=_some(c=_maybe_many(words))),
    misc=_some(x=words),
)

# -- conditions ------------------------------------------------------------------------


def quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_keyword_literals = st.one_of(
    words.map(quoted),
    st.sampled_from(['lowercase("VIP")', 'uppercase("a")', "'a b'", "10", "TRUE", "10.0"]),
)
_number_literals = st.one_of(
    _numbers.map(repr),
    st.sampled_from(['"10"', '"abc"', "1m", "0.5h", "TRUE", '"1e1"']),
)
_integer_literals = st.one_of(
    st.integers(-5, 40).map(str),
    st.sampled_from(["2.5", "-2.5", '"3"', "1e12", "1e1", "3.0", "1m", "9223372036854775807",
                     "12345678901234567", "2147483647"]),
)
_date_literals = st.sampled_from([
    "now()", 'now("Europe/Warsaw")', 'now.offset("-30d")', "now.offset(-1h)",
    'now.offset("+1d", "Europe/Warsaw")', 'datetime("2024-01-01T00:00:00")',
    'datetime("2024-03-31", "Europe/Warsaw")', 'datetime.offset("2024-01-01", "+1d")',
    'datetime.offset(now(), "-1w")', '"2024-05-01"', '"2024-06-01T12:00:00Z"',
    '"2024-01-01T01:00:00+01:00"', "5", '"yesterday"',
])
_boolean_literals = st.sampled_from(["TRUE", "FALSE", "true", '"true"', "1", '"yes"'])

LITERALS = {
    "keyword": _keyword_literals, "number": _number_literals,
    "integer": _integer_literals, "date": _date_literals, "boolean": _boolean_literals,
}

# (field, the kind of literal usually compared with it)
FIELDS = [
    ("profile@active", "boolean"), ("profile@segments", "keyword"),
    ("profile@metadata.time.insert", "date"), ("profile@metadata.time.visit.last", "date"),
    ("profile@metadata.time.visit.count", "integer"), ("profile@stats.views", "integer"),
    ("profile@data.pii.firstname", "keyword"), ("profile@data.pii.birthday", "date"),
    ("profile@data.contact.email.main", "keyword"), ("profile@traits.age", "number"),
    ("profile@traits.score", "number"), ("profile@traits.city", "keyword"),
    ('profile@traits["code"]', "keyword"), ("profile@traits.tags", "keyword"),
    ("profile@traits.vip", "boolean"), ("profile@traits.last_purchase", "date"),
    ("profile@traits.orders.sku", "keyword"), ("profile@traits.orders.qty", "number"),
    ("profile@aux", "keyword"), ("profile@aux.a", "keyword"), ("profile@aux.b.c", "keyword"),
    ("profile@traits", "keyword"), ("profile@traits.orders", "number"),
    ("profile@data.pii", "keyword"), ("profile@misc.x", "keyword"),
    ("profile@unmapped", "number"),
]

_COMPARE_OPS = ["==", "=", "!=", ">", ">=", "<", "<=", "=>", "=<"]
_POSTFIX = ["EXISTS", "NOT EXISTS", "IS NULL", "IS NOT NULL", "EMPTY", "NOT EMPTY",
            "== NULL", "!= NULL"]
_TEXT_OPS = ["CONTAINS", "STARTS WITH", "ENDS WITH"]


@st.composite
def atoms(draw: st.DrawFn) -> str:
    field, kind = draw(st.sampled_from(FIELDS))
    # mostly the field's own kind of literal; sometimes another, which must be refused
    literal_kind = draw(st.sampled_from([kind] * 6 + list(LITERALS)))
    literal = LITERALS[literal_kind]
    form = draw(st.integers(0, 9))
    if form <= 4:
        return f"{field} {draw(st.sampled_from(_COMPARE_OPS))} {draw(literal)}"
    if form == 5:
        return f"{field} BETWEEN {draw(literal)} AND {draw(literal)}"
    if form == 6:
        return f"{field} {draw(st.sampled_from(_POSTFIX))}"
    if form == 7:
        return f"{field} {draw(st.sampled_from(_TEXT_OPS))} {draw(_keyword_literals)}"
    items = draw(st.lists(literal, max_size=3))
    return f"{field} {draw(st.sampled_from(['==', '!=']))} [{', '.join(items)}]"


def _keyword(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower()])


conditions = st.recursive(
    atoms(),
    lambda inner: st.one_of(
        st.tuples(inner, _keyword("AND"), inner).map(" ".join),
        st.tuples(inner, _keyword("OR"), inner).map(" ".join),
        st.tuples(_keyword("NOT"), inner).map(lambda parts: f"{parts[0]} ({parts[1]})"),
        st.tuples(_keyword("NOT"), inner).map(" ".join),
        inner.map(lambda text: f"({text})"),
    ),
    max_leaves=5,
)
