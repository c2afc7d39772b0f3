"""``yarnnn backfill``: a true asset backfill through the Dagster webserver's GraphQL API.

``dagster job backfill`` launches one run per partition of a job and ignores backfill policies
and cross-partition dependency order; an *asset* backfill (what the UI's "Materialize…" does)
honours both, and the backfill daemon runs it. Only the UI or GraphQL can start one, so this
command sends the ``launchPartitionBackfill`` mutation and, with ``--wait``, follows it.

Examples::

    yarnnn backfill --select silver/platform_content --dates 2026-11-20..2026-11-22 --platforms slack,gmail
    yarnnn backfill --select bronze/platform_items/imports,silver/platform_content -p '2026-11-20|slack' --wait
    yarnnn backfill --select ops/content_cleanup --from 2026-11-20-00:00 --to 2026-11-20-23:00
    yarnnn backfill --select gold/memory_facts,gold/session_summaries,gold/activity_patterns \
        --dates 2026-11-16..2026-11-22 --shards all          # every (day, user shard) of a week of nights
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import click
import requests

from yarn_assets.cli.common import CliState, pass_state

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status isAssetBackfill numPartitions
      assetBackfillData { assetBackfillStatuses {
        __typename
        ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted numPartitionsMaterialized
                                             numPartitionsFailed numPartitionsInProgress }
      } }
    }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

#: BulkActionStatus values after which nothing changes any more.
FINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SUCCESS = {"COMPLETED", "COMPLETED_SUCCESS"}


class BackfillError(click.ClickException):
    pass


def _dates(spec: str) -> list[str]:
    start_s, sep, end_s = spec.partition("..")
    try:
        start = dt.date.fromisoformat(start_s)
        end = dt.date.fromisoformat(end_s) if sep else start
    except ValueError:
        raise click.BadParameter(f"{spec!r} is not YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD",
                                 param_hint="--dates") from None
    if end < start:
        raise click.BadParameter(f"{spec!r} ends before it starts", param_hint="--dates")
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def partition_keys(partitions: tuple[str, ...], dates: str | None, platforms: str | None,
                   shards: str | None = None, user_shards: int = 1) -> list[str]:
    """Explicit keys plus the (date × platform) keys of ingest partitions or the (date × user shard) keys
    of the nightly memory assets (``shards``: comma-separated, or ``all`` of ``user_shards``), in order,
    without repeats."""
    from yarn_assets.core.shards import shard_keys

    keys = [k.strip() for p in partitions for k in p.split(",") if k.strip()]
    if platforms and shards:
        raise click.UsageError("--platforms and --shards are second dimensions of different assets: choose one")
    second = platforms or shards
    if dates or second:
        if not (dates and second):
            raise click.UsageError("--dates goes with --platforms or --shards (they expand to 'date|platform' "
                                   "or 'date|shard' keys)")
        names = shard_keys(user_shards) if shards == "all" else [p.strip() for p in second.split(",") if p.strip()]
        keys += [f"{day}|{name}" for day in _dates(dates) for name in names]
    return list(dict.fromkeys(keys))


def backfill_params(selection: list[list[str]], keys: list[str], start: str | None, end: str | None,
                    all_partitions: bool, title: str | None, tags: dict[str, str]) -> dict[str, Any]:
    chosen = sum(bool(x) for x in (keys, start or end, all_partitions))
    if chosen != 1:
        raise click.UsageError("choose exactly one of --partition/--dates, --from/--to, --all-partitions")
    params: dict[str, Any] = {"title": title or None, "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())]}
    if keys:
        params.update(assetSelection=[{"path": p} for p in selection], partitionNames=keys)
    elif all_partitions:
        params.update(assetSelection=[{"path": p} for p in selection], allPartitions=True)
    else:
        if not (start and end):
            raise click.UsageError("--from and --to go together")
        params["partitionsByAssets"] = [
            {"assetKey": {"path": p}, "partitions": {"range": {"start": start, "end": end}}} for p in selection
        ]
    return params


class GraphQL:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.endpoint = url.rstrip("/") + "/graphql"
        self.timeout = timeout

    def __call__(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = requests.post(self.endpoint, json={"query": query, "variables": variables}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise BackfillError(f"cannot reach the Dagster webserver at {self.endpoint} ({type(exc).__name__}); "
                                "is `dagster dev` or dagster-webserver running? (--url / YARNNN_DAGSTER_WEBSERVER_URL)"
                                ) from None
        if resp.status_code != 200:
            raise BackfillError(f"{self.endpoint} answered HTTP {resp.status_code}: {resp.text[:300]}")
        body = resp.json()
        if body.get("errors"):
            raise BackfillError("GraphQL error: " + "; ".join(e.get("message", "?") for e in body["errors"]))
        return body["data"]


def launch(gql: GraphQL, params: dict[str, Any]) -> str:
    result = gql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"backfill refused ({result['__typename']}): {result.get('message', '')}".strip())
    return str(result["backfillId"])


def status(gql: GraphQL, backfill_id: str) -> dict[str, Any]:
    result = gql(STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise BackfillError(f"backfill {backfill_id}: {result['__typename']} {result.get('message', '')}".strip())
    return result


def _progress(state: dict[str, Any]) -> str:
    parts = []
    for s in (state.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []:
        if s.get("__typename") == "AssetPartitionsStatusCounts":
            parts.append(f"{'/'.join(s['assetKey']['path'])}: {s['numPartitionsMaterialized']}/"
                         f"{s['numPartitionsTargeted']} done, {s['numPartitionsFailed']} failed, "
                         f"{s['numPartitionsInProgress']} running")
    return "; ".join(parts)


@click.command("backfill")
@click.option("--select", "select", required=True,
              help="Comma-separated asset keys, e.g. bronze/platform_items/imports,silver/platform_content.")
@click.option("-p", "--partition", "partitions", multiple=True,
              help="Partition key(s), comma-separated or repeated; ingest keys read '2026-11-20|slack'.")
@click.option("--dates", default=None, help="Ingest days YYYY-MM-DD[..YYYY-MM-DD] (with --platforms).")
@click.option("--platforms", default=None, help="Ingest platforms, comma-separated (with --dates).")
@click.option("--shards", default=None,
              help="User shards of the nightly memory assets, comma-separated or 'all' (with --dates).")
@click.option("--from", "start", default=None, help="First partition of a range (single-dimension assets).")
@click.option("--to", "end", default=None, help="Last partition of a range (inclusive).")
@click.option("--all-partitions", is_flag=True, help="Every partition of the selected assets.")
@click.option("--title", default=None)
@click.option("--tag", "tags", multiple=True, help="key=value, repeatable.")
@click.option("--url", default=None, help="Dagster webserver; default YARNNN_DAGSTER_WEBSERVER_URL.")
@click.option("--wait/--no-wait", default=False, help="Follow the backfill until it finishes.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait with --wait.")
@click.option("--poll", default=5.0, show_default=True, help="Seconds between status polls with --wait.")
@pass_state
def backfill_cmd(state: CliState, select: str, partitions: tuple[str, ...], dates: str | None,
                 platforms: str | None, shards: str | None, start: str | None, end: str | None,
                 all_partitions: bool, title: str | None, tags: tuple[str, ...], url: str | None, wait: bool,
                 timeout: float, poll: float) -> None:
    """Launch an asset backfill (honours backfill policies and dependency order) via GraphQL."""
    selection = [[part for part in key.strip().split("/") if part] for key in select.split(",") if key.strip()]
    if not selection:
        raise click.BadParameter("no asset keys", param_hint="--select")
    tag_map: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{tag!r} is not key=value", param_hint="--tag")
        tag_map[key] = value
    tag_map.setdefault("yarnnn/trigger", "cli_backfill")
    keys = partition_keys(partitions, dates, platforms, shards, state.settings.user_shards)
    params = backfill_params(selection, keys, start, end, all_partitions, title, tag_map)
    gql = GraphQL(url or state.settings.dagster_webserver_url)
    backfill_id = launch(gql, params)
    what = f"{len(keys)} partition(s)" if keys else ("all partitions" if all_partitions else f"{start}...{end}")
    click.echo(f"launched asset backfill {backfill_id}: {', '.join('/'.join(p) for p in selection)} x {what}")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        current = status(gql, backfill_id)
        line = f"{current['status']} {_progress(current)}".strip()
        if line != last:
            click.echo(f"  {line}")
            last = line
        if current["status"] in FINAL:
            break
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill {backfill_id} still {current['status']} after {timeout:.0f}s")
        time.sleep(poll)
    if current["status"] not in SUCCESS:
        raise BackfillError(f"backfill {backfill_id} ended {current['status']}")
    click.echo(f"backfill {backfill_id} {current['status']}")
