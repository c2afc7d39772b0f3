"""Typed row predicates that render both to Delta/DataFusion SQL (writes) and to polars (reads).

The stock Delta IO manager builds ``col = '<window start>'`` and silently widens a failed predicate
to a full-table overwrite. Every write here goes through one of these objects, so a window is always
``col >= start AND col < end`` and a key set is always ``col IN (...)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

Scalar = str | int | float | bool | dt.date | dt.datetime


def sql_literal(value: Scalar) -> str:
    """Render a Python value as a SQL literal for DataFusion predicates."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} in a predicate: times are UTC-aware everywhere")
        text = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"'{text}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"unsupported literal type {type(value).__name__}")


def _ident(column: str) -> str:
    if not column.replace("_", "").isalnum():
        raise ValueError(f"bad column name {column!r}")
    return column


class Predicate:
    """A row filter. Subclasses implement ``to_sql`` and ``to_polars``."""

    def to_sql(self, alias: str | None = None) -> str:
        raise NotImplementedError

    def to_polars(self) -> pl.Expr:
        raise NotImplementedError

    def __and__(self, other: Predicate) -> Predicate:
        return And((self, other))

    def __or__(self, other: Predicate) -> Predicate:
        return Or((self, other))


def _col(column: str, alias: str | None) -> str:
    return f"{alias}.{_ident(column)}" if alias else _ident(column)


@dataclass(frozen=True)
class Window(Predicate):
    """Half-open window ``start <= column < end``."""

    column: str
    start: Scalar
    end: Scalar

    def to_sql(self, alias: str | None = None) -> str:
        c = _col(self.column, alias)
        return f"({c} >= {sql_literal(self.start)} AND {c} < {sql_literal(self.end)})"

    def to_polars(self) -> pl.Expr:
        c = pl.col(self.column)
        return (c >= pl.lit(self.start)) & (c < pl.lit(self.end))


@dataclass(frozen=True)
class In(Predicate):
    """``column IN (values)``; an empty list matches nothing."""

    column: str
    values: tuple[Scalar, ...]

    def __init__(self, column: str, values: Iterable[Scalar]) -> None:
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "values", tuple(dict.fromkeys(values)))

    def to_sql(self, alias: str | None = None) -> str:
        if not self.values:
            return "false"
        c = _col(self.column, alias)
        if len(self.values) == 1:
            return f"{c} = {sql_literal(self.values[0])}"
        return f"{c} IN ({', '.join(sql_literal(v) for v in self.values)})"

    def to_polars(self) -> pl.Expr:
        if not self.values:
            return pl.lit(False)
        return pl.col(self.column).is_in(list(self.values))


@dataclass(frozen=True)
class Eq(Predicate):
    column: str
    value: Scalar

    def to_sql(self, alias: str | None = None) -> str:
        return f"{_col(self.column, alias)} = {sql_literal(self.value)}"

    def to_polars(self) -> pl.Expr:
        return pl.col(self.column) == pl.lit(self.value)


@dataclass(frozen=True)
class IsNull(Predicate):
    """``column IS NULL`` (``IS NOT NULL`` with ``negate=True``)."""

    column: str
    negate: bool = False

    def to_sql(self, alias: str | None = None) -> str:
        return f"{_col(self.column, alias)} IS {'NOT ' if self.negate else ''}NULL"

    def to_polars(self) -> pl.Expr:
        c = pl.col(self.column)
        return c.is_not_null() if self.negate else c.is_null()


@dataclass(frozen=True)
class And(Predicate):
    parts: Sequence[Predicate]

    def to_sql(self, alias: str | None = None) -> str:
        return "(" + " AND ".join(p.to_sql(alias) for p in self.parts) + ")"

    def to_polars(self) -> pl.Expr:
        expr = self.parts[0].to_polars()
        for p in self.parts[1:]:
            expr = expr & p.to_polars()
        return expr


@dataclass(frozen=True)
class Or(Predicate):
    parts: Sequence[Predicate]

    def to_sql(self, alias: str | None = None) -> str:
        return "(" + " OR ".join(p.to_sql(alias) for p in self.parts) + ")"

    def to_polars(self) -> pl.Expr:
        expr = self.parts[0].to_polars()
        for p in self.parts[1:]:
            expr = expr | p.to_polars()
        return expr


def all_of(*parts: Predicate | None) -> Predicate | None:
    kept = [p for p in parts if p is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(tuple(kept))
