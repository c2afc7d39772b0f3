"""``yarnnn memory``: what yarnnn remembers about a user, and the user's own statements."""

from __future__ import annotations

import datetime as dt

import click

from control_plane.models import User
from yarn_assets.cli.common import CliState, pass_state, table
from yarn_assets.memory import user_context
from yarn_assets.memory.working_memory import render_working_memory


@click.group("memory")
def memory_group() -> None:
    """User memory (user_context): show, history, set, forget, working memory."""


def _user(session, user_id: str) -> User:  # type: ignore[no-untyped-def]
    user = session.get(User, user_id)
    if user is None:
        raise click.ClickException(f"unknown user {user_id!r}")
    return user


@memory_group.command("set")
@click.option("--user", "user_id", required=True)
@click.option("--key", required=True, help="fact:x | preference:x | instruction:x")
@click.option("--value", required=True)
@pass_state
def memory_set(state: CliState, user_id: str, key: str, value: str) -> None:
    """State a fact as the user (source user_stated, confidence 1.0: outranks anything inferred)."""
    now = dt.datetime.now(dt.UTC)
    with state.session() as session:
        _user(session, user_id)
        try:
            assertion = user_context.Assertion(user_id=user_id, key=key, value=value, source="user_stated",
                                               confidence=1.0, observed_at=now, source_ref=f"cli:{now.isoformat()}")
        except user_context.InvalidAssertion as exc:
            raise click.ClickException(str(exc)) from None
        outcome = user_context.upsert(session, assertion, now=now)
    click.echo(f"{outcome.action}: {key} = {outcome.current_value} ({outcome.current_source})")


@memory_group.command("forget")
@click.option("--user", "user_id", required=True)
@click.option("--key", required=True)
@pass_state
def memory_forget(state: CliState, user_id: str, key: str) -> None:
    """Remove a key's current value (kept in history as retracted)."""
    with state.session() as session:
        _user(session, user_id)
        if not user_context.retract(session, user_id, key):
            raise click.ClickException(f"{user_id} has no current {key}")
    click.echo(f"retracted {key}")


@memory_group.command("show")
@click.option("--user", "user_id", required=True)
@pass_state
def memory_show(state: CliState, user_id: str) -> None:
    """The user's current memory, highest confidence first."""
    with state.session() as session:
        _user(session, user_id)
        rows = [{"key": r.key, "value": r.value[:70], "source": r.source, "confidence": f"{r.confidence:.2f}",
                 "since": r.valid_from.date().isoformat()} for r in user_context.current(session, user_id)]
    click.echo(table(rows, ["key", "value", "source", "confidence", "since"]))


@memory_group.command("history")
@click.option("--user", "user_id", required=True)
@click.option("--key", default=None)
@pass_state
def memory_history(state: CliState, user_id: str, key: str | None) -> None:
    """Every value ever asserted (current, superseded, outranked, retracted) with its validity."""
    with state.session() as session:
        _user(session, user_id)
        rows = [{"key": h.key, "value": h.value[:50], "source": h.source, "status": h.status,
                 "valid_from": h.valid_from.strftime("%Y-%m-%d %H:%M"),
                 "valid_to": h.valid_to.strftime("%Y-%m-%d %H:%M") if h.valid_to else "",
                 "reason": (h.reason or "")[:60]} for h in user_context.history(session, user_id, key)]
    click.echo(table(rows, ["key", "value", "source", "status", "valid_from", "valid_to", "reason"]))


@memory_group.command("working")
@click.option("--user", "user_id", required=True)
@pass_state
def memory_working(state: CliState, user_id: str) -> None:
    """The working-memory block prompts get for this user."""
    with state.session() as session:
        _user(session, user_id)
        text = render_working_memory(state.store, session, user_id, dt.datetime.now(dt.UTC))
    click.echo(text or "(nothing yet)")
