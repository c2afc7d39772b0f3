"""Recurrence expansion with a bound on work, memory and instances (recurring-ical-events underneath).

An .ics of a few hundred bytes can ask for every second since 2000: dateutil walks (and caches)
every occurrence from DTSTART, so the window alone bounds nothing. Before expanding a series:

* **walk**: the occurrences a rule yields before the window are estimated from FREQ, INTERVAL,
  COUNT and its BYxxx lists. Over ``ics_max_rule_steps``, a rule of fixed-length steps
  (SECONDLY…WEEKLY) without COUNT gets a DTSTART moved forward by whole steps, to just before the
  window, which keeps every instance in the window where it was (the BYxxx filters are calendar
  properties, invariant under whole steps); any other rule is not expanded (one item, flagged);
* **density**: the window is expanded in chunks that can each hold at most about
  ``ics_max_instances_per_series`` instances, and expansion stops once the cap is reached; what
  the cap dropped is counted (exactly when the whole window was expanded, else estimated from
  the rule, and labelled so);
* **time**: a file's series share ``ics_max_expansion_seconds`` (one series gets at most a tenth
  of it), enforced by a trace hook that interrupts even a single dateutil walk that never yields.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import icalendar
import recurring_ical_events

from resources.input_limits import InputLimits

_PERIOD_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400,
                   "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}
#: frequencies whose step has a fixed length in wall time (MONTHLY/YEARLY steps vary)
_FIXED_STEP = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY")
_ORDER = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
#: BYxxx part -> the frequency from which it expands a step (more instances) instead of filtering it
_EXPANDS = {"BYSECOND": "MINUTELY", "BYMINUTE": "HOURLY", "BYHOUR": "DAILY", "BYDAY": "WEEKLY",
            "BYMONTHDAY": "MONTHLY", "BYYEARDAY": "YEARLY", "BYWEEKNO": "YEARLY", "BYMONTH": "YEARLY"}


class ExpansionTimeout(Exception):
    """The file's expansion budget ran out (raised inside whatever Python code was running)."""


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Interrupt pure-Python work in this thread once ``time.monotonic()`` passes ``at``.

    A trace function sees every Python call (dateutil's walk calls helpers on every step), so a
    rule that never yields is still stopped; raising from it unwinds into our ``except``.
    """
    previous = sys.gettrace()
    calls = [0]

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        calls[0] += 1
        if not calls[0] & 255 and time.monotonic() > at:
            raise ExpansionTimeout
        return previous(frame, event, arg) if previous is not None else None

    if time.monotonic() > at:
        raise ExpansionTimeout
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)


@dataclass
class Expansion:
    """The instances of one series in the window, and what bounding them cost."""

    instances: list[Any] = field(default_factory=list)
    error: str | None = None  # set: nothing expanded, the series stays one item
    dropped: int = 0  # instances in the window beyond the cap
    dropped_exact: bool = True
    start_moved: bool = False  # DTSTART moved forward along the rule's own steps

    def metadata(self, cap: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.dropped:
            out.update({"instance_cap": cap, "instances_dropped": self.dropped,
                        "instances_dropped_exact": self.dropped_exact})
        if self.start_moved:
            out["recurrence_start_moved"] = True
        return out


@dataclass(frozen=True)
class _Rule:
    freq: str
    step: float  # seconds (nominal for MONTHLY/YEARLY)
    per_step: int  # most instances one step can hold
    count: int | None

    @property
    def fixed(self) -> bool:
        return self.freq in _FIXED_STEP


def _rules(master: Any) -> list[_Rule]:
    value = master.get("RRULE")
    out = []
    for rule in value if isinstance(value, list) else [value] if value is not None else []:
        freq = str((rule.get("FREQ") or ["DAILY"])[0]).upper()
        if freq not in _PERIOD_SECONDS:
            raise ValueError(f"unknown FREQ {freq}")
        interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
        per_step = 1
        for part, from_freq in _EXPANDS.items():
            values = rule.get(part)
            if values and _ORDER.index(freq) >= _ORDER.index(from_freq):
                weeks = {"MONTHLY": 5, "YEARLY": 53}.get(freq, 1) if part == "BYDAY" else 1
                per_step *= len(values) * weeks
        count = rule.get("COUNT")
        out.append(_Rule(freq, interval * _PERIOD_SECONDS[freq], per_step, int(count[0]) if count else None))
    return out


def _sort_key(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(value, dt.time(), dt.UTC)


def _instance_key(instance: Any) -> Any:
    prop = instance.get("RECURRENCE-ID") or instance.get("DTSTART")
    return prop.dt if prop is not None else id(instance)


def _start_and_duration(master: Any) -> tuple[Any, dt.timedelta]:
    start_prop = master.get("DTSTART")
    if start_prop is None or isinstance(start_prop, list):
        raise ValueError("no single DTSTART")
    start = start_prop.dt
    end_prop = master.get("DTEND")
    if end_prop is not None and not isinstance(end_prop, list):
        duration = _sort_key(end_prop.dt) - _sort_key(start)
    elif master.get("DURATION") is not None:
        duration = master.decoded("DURATION")
    else:
        duration = dt.timedelta(days=1) if not isinstance(start, dt.datetime) else dt.timedelta(0)
    return start, max(duration, dt.timedelta(0))


def _wall(value: dt.datetime, like: Any) -> dt.datetime:
    """``value`` (UTC) as a naive wall time in the zone of ``like`` (how dateutil steps)."""
    if isinstance(like, dt.datetime) and like.tzinfo is not None:
        return value.astimezone(like.tzinfo).replace(tzinfo=None)
    return value.replace(tzinfo=None)


def _moved(master: Any, start: Any, to: dt.datetime, step: float) -> Any | None:
    """A copy of ``master`` whose DTSTART is moved forward by whole ``step`` s to at most ``to``."""
    base = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time())
    naive = base.replace(tzinfo=None)
    steps = math.floor((_wall(to, start) - naive).total_seconds() / step)
    if steps <= 0:
        return None
    delta = dt.timedelta(seconds=steps * step)
    if not isinstance(start, dt.datetime) and delta % dt.timedelta(days=1):
        return None  # an all-day series can only move by whole days
    moved = copy.copy(master)
    for name in ("DTSTART", "DTEND"):
        prop = master.get(name)
        if prop is None or isinstance(prop, list):
            continue
        value = icalendar.prop.vDDDTypes(prop.dt + delta)
        value.params = copy.copy(prop.params)
        moved[name] = value
    return moved


#: One series may use at most this share of the file's budget, so one hostile rule cannot starve the rest.
SERIES_SHARE = 0.1


def expand_series(calendar: Any, master: Any, overrides: list[Any], window: tuple[dt.datetime, dt.datetime],
                  limits: InputLimits, budget_until: float) -> Expansion:
    """Instances of one series overlapping ``window`` (overrides and EXDATEs applied), bounded."""
    cap = limits.ics_max_instances_per_series
    until = min(budget_until, time.monotonic() + SERIES_SHARE * limits.ics_max_expansion_seconds)
    try:
        with deadline(until):
            return _expand(calendar, master, overrides, window, limits, cap)
    except ExpansionTimeout:
        return Expansion(error=f"not expanded: over its share ({SERIES_SHARE:.0%}) of the file's expansion time "
                               f"budget, {limits.named('ics_max_expansion_seconds')}")
    except RecursionError:
        return Expansion(error="not expanded: RecursionError")
    except Exception as exc:  # a broken rule: keep the series as one item, say why
        return Expansion(error=f"{type(exc).__name__}: {exc}")


def _expand(calendar: Any, master: Any, overrides: list[Any], window: tuple[dt.datetime, dt.datetime],
            limits: InputLimits, cap: int) -> Expansion:
    start, duration = _start_and_duration(master)
    rules = _rules(master)
    w0, w1 = window
    first = _sort_key(start)
    before = max(0.0, (w0 - first).total_seconds())
    span = (w1 - w0).total_seconds()
    pre_walk = sum(min(r.count or math.inf, (before / r.step + 1) * r.per_step) for r in rules)
    dense = sum(min(r.count or math.inf, (span / r.step + 1) * r.per_step) for r in rules)
    rdates = master.get("RDATE")
    dense += sum(len(r.dts) for r in (rdates if isinstance(rdates, list) else [rdates] if rdates else []))
    dense += len(overrides)
    movable = bool(rules) and all(r.fixed and r.count is None for r in rules)
    step = math.lcm(*(int(r.step) for r in rules)) if movable else 0
    if pre_walk > limits.ics_max_rule_steps and not movable:
        return Expansion(error=f"not expanded: the rule runs through ~{pre_walk:.3g} occurrences before the window, "
                               f"over {limits.named('ics_max_rule_steps')} (COUNT or a MONTHLY/YEARLY step keeps "
                               "its start from moving)")
    move = movable and pre_walk > limits.ics_max_rule_steps
    # chunks that can each hold ~cap instances at most (the whole window when it cannot hold more)
    chunk = span if dense <= 2 * cap else max(1.0, span * cap / dense)
    result = Expansion(start_moved=move)
    found: dict[Any, Any] = {}
    t = w0
    while t < w1 and len(found) <= cap:
        b = min(w1, t + dt.timedelta(seconds=chunk))
        head = master
        if move:
            head = _moved(master, start, t - duration - dt.timedelta(seconds=step), step) or master
        for instance in _query(calendar, head, overrides).between(t, b):
            found.setdefault(_instance_key(instance), instance)
        t = b
    ordered = sorted(found.values(), key=lambda i: _sort_key(_instance_key(i)))
    result.instances = ordered[:cap]
    if len(ordered) > cap:
        result.dropped = len(ordered) - cap
    if t < w1:  # stopped at the cap: what the rest of the window would hold, estimated from the rule
        rest = (w1 - t).total_seconds()
        result.dropped += int(sum(min(r.count or math.inf, (rest / r.step + 1) * r.per_step) for r in rules))
        result.dropped_exact = False
    return result


def _query(calendar: Any, master: Any, overrides: list[Any]) -> Any:
    series = icalendar.Calendar()
    if calendar.get("X-WR-TIMEZONE"):
        series.add("X-WR-TIMEZONE", calendar.get("X-WR-TIMEZONE"))
    for tz in calendar.walk("VTIMEZONE"):
        series.add_component(tz)
    for event in (master, *overrides):
        series.add_component(event)
    return recurring_ical_events.of(series, skip_bad_series=False)

