"""The user-shard dimension of the hourly signals and the per-hour batched inputs.

Real Delta tables and control plane, offline LLM: an hour split over shards writes what the
unsharded hour writes, a shard's re-run leaves the other shards' rows alone, and the batched
loaders hand each user only their own rows.
"""

import collections
import datetime as dt

import dagster as dg
import polars as pl

from control_plane import db
from io_managers.predicates import Eq
from tests.signals.seed import add_deliverable, add_users, email, event, hour, land, slack
from yarn_assets.core.shards import shard_keys, shard_of
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.signals import context as ctxmod
from yarn_assets.signals.assets import build_signal_passes, hour_key
from yarn_assets.signals.tables import SIGNAL_SUMMARIES

NOW = dt.datetime.now(dt.UTC)
H = hour(NOW) - dt.timedelta(hours=30)
AS_OF = H + dt.timedelta(hours=1)
USERS = [f"user{i}" for i in range(8)]


def _seed(store, url) -> None:  # type: ignore[no-untyped-def]
    add_users(url, *[(u, f"{u}@northwind.example", "pro") for u in USERS])
    fetched = AS_OF - dt.timedelta(hours=2)
    for n, u in enumerate(USERS):
        land(store, u, "calendar", [
            event(f"{u}-ev{k}", f"Review {k}", AS_OF + dt.timedelta(hours=3 + k),
                  [f"{u}@northwind.example", "dana@partner.example", "sam@partner.example"]) for k in range(3)
        ], fetched)
        land(store, u, "gmail", [
            email(f"{u}-m{k}", f"{u}-t{k}", f"Contract {k}", "dana@partner.example", [f"{u}@northwind.example"],
                  AS_OF - dt.timedelta(days=4)) for k in range(3 + n % 2)
        ], fetched)
        notes = [slack(f"17000000{n}{k}.000100", "C-launch", f"Launch note {k}", "Dana", AS_OF - dt.timedelta(hours=3))
                 for k in range(2)]
        land(store, u, "slack", notes, AS_OF - dt.timedelta(minutes=30))


def test_shard_of_is_stable_and_spreads_users() -> None:
    assert shard_keys(1) == ["0"] and shard_keys(4) == ["0", "1", "2", "3"]
    users = [f"u{i}" for i in range(2000)]
    before = {u: shard_of(u, 8) for u in users}
    assert {u: shard_of(u, 8) for u in [*users, *[f"new{i}" for i in range(500)]] if u in before} == before
    sizes = collections.Counter(before.values())
    assert set(sizes) == set(shard_keys(8)) and max(sizes.values()) < 1.3 * min(sizes.values())


def test_an_hour_over_shards_equals_the_unsharded_hour_and_reruns_stay_in_their_shard(
        settings, store, resources) -> None:  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    _seed(store, url)
    columns = ["user_id", "pass", "status", "skip_reason", "items_total", "fingerprint", "actions_proposed"]

    def hour_rows() -> pl.DataFrame:
        return store.read(SIGNAL_SUMMARIES, Eq("partition_hour", H)).select(columns).sort(["user_id", "pass"])

    one = build_signal_passes(1)
    assert dg.materialize([one], partition_key=hour_key(H), resources=resources).success
    whole = hour_rows()
    assert sorted(set(whole["user_id"])) == USERS

    two = build_signal_passes(2)
    runs = {}
    for shard in shard_keys(2):
        result = dg.materialize([two], partition_key=hour_key(H, shard), resources=resources)
        assert result.success
        mats = result.asset_materializations_for_node("signal_passes")
        runs[shard] = mats[0].metadata["users"].value
    expected = collections.Counter(shard_of(u, 2) for u in USERS)
    assert runs == {s: expected[s] for s in shard_keys(2)}
    assert hour_rows().equals(whole)  # same rows, each user's once: shards replaced only their users

    theirs = hour_rows().filter(pl.col("user_id").map_elements(lambda u: shard_of(u, 2) == "1",
                                                                return_dtype=pl.Boolean))
    assert dg.materialize([two], partition_key=hour_key(H, "0"), resources=resources).success
    assert hour_rows().filter(pl.col("user_id").is_in(theirs["user_id"].implode())).equals(theirs)
    assert hour_rows().height == whole.height


def test_batched_loaders_hand_each_user_only_their_rows(settings, store) -> None:  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    add_users(url, ("ann", "ann@a.example", "pro"), ("ben", "ben@b.example", "pro"))
    ids = {u: add_deliverable(url, u, title=f"{u}'s digest", status="active") for u in ("ann", "ben")}
    rows = []
    for u, did in ids.items():
        for v in (1, 2):
            rows.append({"deliverable_id": did, "version_id": f"{did}-{v}", "version_number": v, "user_id": u,
                         "final_content": f"{u} version {v}", "status": "delivered"})
    # a row that names ben's deliverable under ann's id must never become ben's (or ann's) preview
    rows.append({"deliverable_id": ids["ben"], "version_id": "forged", "version_number": 9, "user_id": "ann",
                 "final_content": "ann's text", "status": "delivered"})
    store.merge(DELIVERABLE_VERSIONS, pl.DataFrame(rows, schema=dict(DELIVERABLE_VERSIONS.schema), strict=False))
    with db.session_scope(url) as s:
        from control_plane.models import DeliverableVersion

        for did in ids.values():
            s.add(DeliverableVersion(deliverable_id=did, version_number=2, status="delivered"))
    with db.session_scope(url) as s:
        views = ctxmod.load_deliverables_for(s, store, ["ann", "ben"])
        profiles, selected = ctxmod.load_profiles(s, ["ann", "ben", "nobody"])
    assert {u: [(v.id, v.preview) for v in vs] for u, vs in views.items()} == {
        "ann": [(ids["ann"], "ann version 2")], "ben": [(ids["ben"], "ben version 2")]}
    assert set(profiles) == {"ann", "ben"} and profiles["ben"].addresses == frozenset({"ben@b.example"})
    assert selected == {"ann": {}, "ben": {}}


def test_an_api_hour_decides_users_in_parallel_within_the_bound(settings, store, resources) -> None:  # type: ignore[no-untyped-def]
    from resources.llm import LLM
    from tests.fakes.anthropic_server import FakeAnthropic
    from tests.scale.test_llm_backpressure import InFlight

    class NoAction(InFlight):
        def __call__(self, req):  # type: ignore[no-untyped-def]
            reply = super().__call__(req)
            reply.body["content"][0]["input"] = {"actions": [], "reasoning": "nothing significant"}
            return reply

    _seed(store, settings.resolved_control_plane_url)
    server = NoAction(hold=0.2)
    with FakeAnthropic(default=server) as api:
        llm = LLM(control_plane=resources["control_plane"], offline=False, api_key="sk-test-not-a-secret",
                  base_url=api.base_url, timeout_seconds=10.0, max_retries=1, max_concurrency=3)
        result = dg.materialize([build_signal_passes(1)], partition_key=hour_key(H),
                                resources={**resources, "llm": llm})
    assert result.success
    rows = store.read(SIGNAL_SUMMARIES, Eq("partition_hour", H))
    assert rows.filter(pl.col("status") == "evaluated").height == len(api.requests) == 2 * len(USERS)
    assert server.peak == 3  # users decided in parallel, never more than the bound at once
    # each request carried one user's content only
    for req in api.requests:
        named = {u for u in USERS if f"{u}-ev" in req.prompt_text or f"{u}-t" in req.prompt_text}
        assert len(named) == 1
