"""The eight Tracardi scripts the migration once recognised by their text, written out
(four are in the 0.8.2 plans as they are; the others are earlier or unguarded revisions)."""

from __future__ import annotations

_START = "Map row = new HashMap();\n"
_END = "\nctx._source = [:];\nctx._source.putAll(row);\n"
_CONTACT = """String x = null;
String y = null;
if({guard}ctx._source.data.contact!=null) {{
  x=  ctx._source.data.contact.email ?: "";
  y = ctx._source.data.contact.phone ?: "";
}}
row.putAll(ctx._source);
if (row.data == null) {{
    row.data = new HashMap();
}}
if (row.data.contact == null) {{
    row.data.contact = new HashMap();
}}
row.data.contact.email = new HashMap();
row.data.contact.phone = new HashMap();
if(x != null) row.data.contact.email.main = x;
if(y != null) row.data.contact.phone.main = y;
"""
_PROFILE_TAIL = """row.data.anonymous = null;
if(ctx._source.data.pii.name!=null) row.data.pii.display_name = ctx._source.data.pii.name;
row.data.devices.other = ctx._source.data.devices.names;
try { row.data.devices.remove("names"); } catch(Exception e) {}
try { row.data.pii.remove("name"); } catch(Exception e) {}"""
_EC = (("cost", "other"), ("income", "revenue"), ("cost", "discount"), ("cost", "tax"),
       ("cost", "shipping"))
_EVENT_TAIL = "\n".join(f'try {{ row.data.ec.order.{part}.remove("{key}"); }} '
                        f'catch(Exception e) {{}}' for part, key in _EC)
_GUARDED, _UNGUARDED = "ctx._source.data!=null && ", ""

# description -> script
SCRIPTS: dict[str, str] = {
    "entity: drop timestamp": 'row.putAll(ctx._source);\nrow.remove("timestamp");',
    "event-reshaping: drop mapping": 'row.putAll(ctx._source);\nrow.remove("mapping");',
    "profile 0.8.2 (early): data.anonymous = null":
        "row.putAll(ctx._source);\nrow.data.anonymous = null;",
    "profile 0.8.2: contact, pii.name, devices.names":
        _CONTACT.format(guard=_GUARDED) + _PROFILE_TAIL,
    "profile 0.8.2 (unguarded): contact, pii.name, devices.names":
        _CONTACT.format(guard=_UNGUARDED) + _PROFILE_TAIL,
    "event 0.8.2: contact, ec.order fields": _CONTACT.format(guard=_GUARDED) + _EVENT_TAIL,
    "event 0.8.2 (unguarded): contact, ec.order fields":
        _CONTACT.format(guard=_UNGUARDED) + _EVENT_TAIL,
    "event 0.8.2 (early): ec.order fields": "row.putAll(ctx._source);\n" + "\n".join(
        f'row.data.ec.order.{part}.remove("{key}");' for part, key in _EC),
}
SCRIPTS = {name: _START + body + _END for name, body in SCRIPTS.items()}
