"""``yarnnn contacts`` and ``yarnnn search``: a user's contacts, their identities, merges and splits,
and semantic search over the user's content."""

from __future__ import annotations

import datetime as dt
import json

import click
import polars as pl

from control_plane.models import User
from yarn_assets.cli.common import CliState, pass_state, table
from yarn_assets.people import decisions, refresh, retrieval, service, timeline
from yarn_assets.people import settings as people_settings


@click.group("contacts")
def contacts_group() -> None:
    """Contacts extracted from a user's mail, Slack and meetings: list, show, merge, split, policy."""


def _user(state: CliState, user_id: str) -> None:
    with state.session() as session:
        if session.get(User, user_id) is None:
            raise click.ClickException(f"unknown user {user_id!r}")


def _policy(state: CliState):  # type: ignore[no-untyped-def]
    from resources.registry import build_people_policy

    return build_people_policy(state.settings)


def _contact(state: CliState, user_id: str, ref: str) -> dict:  # type: ignore[type-arg]
    found = service.find_contact(state.store, user_id, ref)
    if found is None:
        raise click.ClickException(f"{user_id} has no contact {ref!r} (an id, a former id, or an address)")
    return found


def _refresh(state: CliState, user_id: str) -> refresh.RefreshReport:
    from control_plane import db

    url = state.settings.resolved_control_plane_url

    def session_factory():  # type: ignore[no-untyped-def]
        return db.session_scope(url)

    return refresh.refresh_users(state.store, session_factory, [user_id], _policy(state), dt.datetime.now(dt.UTC))


@contacts_group.command("list")
@click.option("--user", "user_id", required=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per contact.")
@pass_state
def contacts_list(state: CliState, user_id: str, limit: int, as_json: bool) -> None:
    """The user's contacts, most recent interaction first."""
    _user(state, user_id)
    df = service.contacts(state.store, user_id).sort("last_interaction_at", descending=True, nulls_last=True)
    rows = df.head(limit).to_dicts()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, default=str, sort_keys=True))
        return
    shown = [{"id": r["contact_id"], "name": r["display_name"], "email": r["primary_email"] or "",
              "organisation": r["organisation"] or "", "last": r["last_interaction_at"].strftime("%Y-%m-%d")
              if r["last_interaction_at"] else "", "mail s/r": f"{r['emails_sent']}/{r['emails_received']}",
              "slack": r["slack_messages"], "meetings": r["meetings"]} for r in rows]
    click.echo(table(shown, ["id", "name", "email", "organisation", "last", "mail s/r", "slack", "meetings"]))
    click.echo(f"{df.height} contact(s)")


@contacts_group.command("show")
@click.option("--user", "user_id", required=True)
@click.argument("contact")
@pass_state
def contacts_show(state: CliState, user_id: str, contact: str) -> None:
    """A contact: identifiers, why they were merged (rule, confidence, reason), recent interactions."""
    _user(state, user_id)
    c = _contact(state, user_id, contact)
    click.echo(f"{c['display_name']}  ({c['contact_id']})  name from {c['name_source']}")
    click.echo(f"organisation: {c['organisation'] or '-'} ({c['organisation_domain'] or '-'})")
    click.echo(f"emails: {', '.join(c['emails']) or '-'}   slack: {', '.join(c['slack_ids']) or '-'}   "
               f"phones: {', '.join(c['phones']) or '-'}")
    click.echo(f"first/last interaction: {c['first_interaction_at']} / {c['last_interaction_at']}   "
               f"next meeting: {c['next_meeting_at'] or '-'}")
    click.echo(f"mail sent/received {c['emails_sent']}/{c['emails_received']}, slack {c['slack_messages']}, "
               f"meetings {c['meetings']}; created because: {c['created_reason']}")
    members = service.person_members(state.store, user_id, c["contact_id"])
    links = service.links(state.store, user_id).filter(pl.col("a").is_in(members) | pl.col("b").is_in(members))
    if links.height:
        click.echo("\nlinks:")
        rows = [{"a": r["a"], "b": r["b"], "rule": r["rule"], "conf": f"{r['confidence']:.2f}", "status": r["status"],
                 "reason": (r["reason"] or "")[:70]} for r in links.sort("status", "rule").iter_rows(named=True)]
        click.echo(table(rows, ["a", "b", "rule", "conf", "status", "reason"]))
    recent = (timeline.interactions_of(state.store, [user_id]).filter(pl.col("participant").is_in(members))
              .sort("occurred_at", descending=True).unique("item_key", keep="first", maintain_order=True).head(10))
    if recent.height:
        click.echo("\nrecent interactions:")
        rows = [{"when": r["occurred_at"].strftime("%Y-%m-%d %H:%M") if r["occurred_at"] else "",
                 "channel": r["channel"], "direction": r["direction"], "subject": (r["subject"] or "")[:60],
                 "bulk": r["bulk_reason"] or ""} for r in recent.iter_rows(named=True)]
        click.echo(table(rows, ["when", "channel", "direction", "subject", "bulk"]))


@contacts_group.command("merge")
@click.option("--user", "user_id", required=True)
@click.argument("first")
@click.argument("second")
@click.option("--note", default=None, help="Why (kept with the decision).")
@pass_state
def contacts_merge(state: CliState, user_id: str, first: str, second: str, note: str | None) -> None:
    """Merge two contacts (ids or addresses) into one; `contacts split` undoes it."""
    _user(state, user_id)
    a = _anchor(state, user_id, first)
    b = _anchor(state, user_id, second)
    with state.session() as session:
        try:
            decision_id = decisions.record_merge(session, user_id, a, b, note, dt.datetime.now(dt.UTC))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    report = _refresh(state, user_id)
    merged = service.find_contact(state.store, user_id, a)
    click.echo(f"merged {a} and {b} (decision {decision_id}) -> {merged['contact_id'] if merged else '?'}; "
               f"{report.contacts} contact(s)")


@contacts_group.command("split")
@click.option("--user", "user_id", required=True)
@click.argument("contact")
@click.argument("identifier")
@click.option("--note", default=None)
@pass_state
def contacts_split(state: CliState, user_id: str, contact: str, identifier: str, note: str | None) -> None:
    """Take IDENTIFIER (an address or Slack id) out of CONTACT; the links stay on record as vetoed."""
    _user(state, user_id)
    c = _contact(state, user_id, contact)
    ident = service.identifier_for(identifier)
    members = service.person_members(state.store, user_id, c["contact_id"])
    if ident is None or ident not in members:
        known = ", ".join(members)
        raise click.ClickException(f"{identifier!r} is not one of {c['contact_id']}'s identifiers: {known}")
    with state.session() as session:
        try:
            decision_id = decisions.record_split(session, user_id, ident, members, note, dt.datetime.now(dt.UTC))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    report = _refresh(state, user_id)
    click.echo(f"split {ident} from {c['contact_id']} (decision {decision_id}); {report.contacts} contact(s)")


@contacts_group.command("policy")
@click.option("--user", "user_id", required=True)
@click.option("--set", "policy", type=click.Choice(people_settings.POLICIES), default=None)
@click.option("--exclude-freemail/--include-freemail", default=None)
@pass_state
def contacts_policy(state: CliState, user_id: str, policy: str | None, exclude_freemail: bool | None) -> None:
    """Show or set the user's contact creation policy (recomputes their contacts when changed)."""
    with state.session() as session:
        try:
            if policy is not None or exclude_freemail is not None:
                people_settings.set_policy(session, user_id, creation_policy=policy, exclude_freemail=exclude_freemail)
            defaults = _policy(state)
            chosen = people_settings.load(session, [user_id], default_policy=defaults.contact_policy,
                                          exclude_freemail=defaults.exclude_freemail,
                                          exclude_role_addresses=defaults.exclude_role_addresses)[user_id]
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    if policy is not None or exclude_freemail is not None:
        report = _refresh(state, user_id)
        click.echo(f"recomputed: {report.contacts} contact(s)")
    click.echo(f"{user_id}: creation policy {chosen.contact_policy}, exclude free mail {chosen.exclude_freemail}, "
               f"exclude role addresses {chosen.exclude_role_addresses}")


def _anchor(state: CliState, user_id: str, ref: str) -> str:
    """An identifier standing for ``ref`` (a contact id -> its smallest identifier)."""
    found = service.find_contact(state.store, user_id, ref)
    if found is not None:
        members = service.person_members(state.store, user_id, found["contact_id"])
        if members:
            return sorted(members)[0]
    ident = service.identifier_for(ref)
    if ident is None:
        raise click.ClickException(f"{ref!r} is neither a contact of {user_id} nor an address or Slack id")
    return ident


@click.command("search")
@click.option("--user", "user_id", required=True)
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, type=int)
@click.option("--platform", "platforms", multiple=True, help="slack | gmail | calendar | notion (repeatable).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def search_command(state: CliState, user_id: str, query: str, k: int, platforms: tuple[str, ...],
                   since: dt.datetime | None, until: dt.datetime | None, as_json: bool) -> None:
    """Semantic search over one user's content (local embeddings, exact nearest neighbours)."""
    from resources.registry import build_embeddings

    _user(state, user_id)
    policy = _policy(state)
    filters = retrieval.SearchFilters(platforms=platforms, since=since.replace(tzinfo=dt.UTC) if since else None,
                                      until=until.replace(tzinfo=dt.UTC) if until else None)
    try:
        hits = retrieval.search(state.store, user_id, query, k, filters, embedder=build_embeddings(state.settings)
                                .embedder(), max_k=policy.retrieval_max_k)
    except retrieval.SearchError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        for h in hits:
            click.echo(json.dumps(h.as_dict(), default=str, sort_keys=True))
        return
    if not hits:
        click.echo("(no results)")
        return
    for h in hits:
        when = h.occurred_at.strftime("%Y-%m-%d") if h.occurred_at else "undated"
        title = f" \"{h.title}\"" if h.title else ""
        click.echo(f"{h.score:.3f}  [{when}] {h.platform}:{h.resource_name or h.resource_id}{title}  "
                   f"{h.author or ''}\n       {h.snippet[:160]}")


COMMANDS = [contacts_group, search_command]
