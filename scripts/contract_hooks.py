"""schemathesis hooks of scripts/contract: what the OpenAPI document says in words, not in schemas.

A JSON schema describes one parameter at a time, so two rules of the API are stated only in the
descriptions (and their 422 responses are in the document):

- `from` must not be after `to` (search, topology; topology's `to` defaults to now);
- the live feed follows at least one `key`, `correlation` or `trace`, and at most 200 in all.

These hooks keep generated requests within both rules, by changing the case rather than dropping
it, so every other value schemathesis draws is still sent.
"""

import re
import time

import schemathesis

# The two shapes of a time parameter (collector/src/query/mod.rs, TIME_PATTERN): epoch
# milliseconds, or an RFC 3339 date-time. Parsed here without `datetime`, which has no year 0.
_MS = re.compile(r"^[+-]?[0-9]{1,15}$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$"
)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def time_us(value):
    """The instant of a time parameter in µs since the epoch, or None when it is not one."""
    if not isinstance(value, str):
        return None
    if _MS.match(value):
        return int(value) * 1000
    m = _RFC3339.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = (m.group(7) or "").ljust(6, "0")[:6]
    offset = 0
    if m.group(8):
        offset = (int(m.group(9)) * 60 + int(m.group(10))) * 60
        if m.group(8) == "-":
            offset = -offset
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000 + int(fraction)


def _path(context):
    return context.operation.path if context.operation is not None else ""


def _within_rules(path, query):
    """`query` changed, where needed, to follow both rules."""
    if path in ("/api/v1/search", "/api/v1/topology"):
        start, end = time_us(query.get("from")), time_us(query.get("to"))
        if start is not None and end is not None and start > end:
            query["from"], query["to"] = query["to"], query["from"]
        elif path == "/api/v1/topology" and start is not None and "to" not in query:
            if start > time.time() * 1_000_000:
                query["to"] = query["from"]
    elif path == "/api/v1/live":
        budget = 200
        for name in ("key", "correlation", "trace"):
            values = query.get(name)
            if values is None:
                continue
            if not isinstance(values, list):
                values = [values]
            query[name] = values[:budget]
            budget -= len(query[name])
            if not query[name]:
                del query[name]
        if budget == 200:
            query["correlation"] = ["no-such-correlation"]
    return query


@schemathesis.hook
def map_case(context, case):
    # Only requests meant to be valid: a negative one is refused whatever these rules say.
    meta = case.meta
    if meta is not None and meta.generation.mode != "positive":
        return case
    path = _path(context)
    if path in ("/api/v1/search", "/api/v1/topology", "/api/v1/live"):
        case.query = _within_rules(path, dict(case.query or {}))
    return case
