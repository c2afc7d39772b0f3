"""Users scaling: one hourly signals partition, one nightly memory partition, one round of due deliverables.

    python -m benchmarks.users_scale                      # U = 10, 100, 1,000
    python -m benchmarks.users_scale --full               # and 10,000
    python -m benchmarks.users_scale --sizes 100 --profile
    python -m benchmarks.users_scale --sizes 1000 --phases signals --api   # loopback API, 1 s per call

Per size, a fresh yarnnn home (offline LLM, SQLite control plane) gets U active ``pro`` users with
~135 silver items each over the last week (80 Slack messages in 2 channels, 30 emails, 10 Notion
pages, 15 calendar events), written through the product's silver path (``silver_rows`` +
``merge_platform_content``, one merge per platform and chunk of users), 3 scheduled deliverables
per user (Slack digest, inbox brief, status report; file outbox) all due now, and ~10 meaningful
activity events per user over 30 days. Then, each phase in its own spawned process (peak RSS is
the child's own ``ru_maxrss``, wall time excludes interpreter start and the definitions load):

1. ``deliverables``: one round per user shard of the due deliverables (3 × U versions, with
   retention marks), grouped by ``shard_of(user_id, user_shards)`` as the product's sensor groups
   them, through ``yarn_assets.deliverables.round.run_round``; silver rows rewritten (Delta commit
   metrics: copied + updated) against rows retained (silver rows marked + ``gold/retained_items``),
   and the commits the round added to the versions and retention tables (table creation included);
2. ``signals``: the hour before the last complete one (a *busy* hour: no pass has run yet);
3. ``signals_quiet``: the next hour, with no new content (the wake gate should skip everything);
4. ``memory``: the nightly memory of yesterday, every (day, user shard) partition in turn (``--shards``,
   default the ``user_shards`` setting), with the time of each shard.

``--profile`` runs each phase under cProfile and prints the top functions by own time
(``tottime``) and by cumulative time within the project's packages.

Baseline, main 31f1407, measured with ``--profile`` on 2 cores shared with six other sessions' test
suites (load average ~10, so absolute times are ~3x a quiet machine's), offline:

=========================  ========================  =======================================
phase                      10 users                  100 / 1,000 users
=========================  ========================  =======================================
deliverables round (30)    61.9 s, 0.45 GiB          not finished within the 15 min budget
signals busy hour          10.1 s, 0.40 GiB          issue (quiet machine): 14.4 s / 440 s
signals quiet hour         7.0 s (0.69 x busy)       issue: 434 s vs 444 s at 1,000
memory night               6.0 s, 0.38 GiB           issue: 3.3 s / 27 s (1.3 GiB)
=========================  ========================  =======================================

Deliverables round after issue 13 (branch i13-round-core, offline, no profiler, load average ~9 on
the 2 shared cores): 2.5 s / 23.9 s / 253.5 s for 10 / 100 / 1,000 users (3 deliverables each; growth
exponent 0.98, 1.03; 0.71 GiB at 1,000), silver rows rewritten 0 against 60,000 retained, 2 gold
commits and 1 retention commit per round (before: 29 s for 10 users, 555 s for 100, one run,
a silver merge and two gold merges per deliverable). Remaining hot spots (``--profile``, 100 users):
the control-plane commits per deliverable (the delivery outbox's commit before and after each send,
the LLM usage row), then gathering and rendering each prompt (polars per deliverable), the offline
composer; Delta I/O is ~1 % of the round.

After issue 13 (branch i13-perf, same machine and load, offline, no profiler; details and the API
mode in ``benchmarks/README.md``): signals busy hour 5.6 s / 7.1 s / 42.0 s (0.57 GiB) for
10 / 100 / 1,000 users, quiet hour 3.1 s / 6.8 s / 38.9 s, memory night 2.4 s / 2.6 s / 7.3 s.

Wake gate before loading, deferred actions from the deferring decision, batches of 1,000 users
(branch i13-quiet, offline; numbers and loads in ``benchmarks/README.md``): quiet / busy hour 0.93 ->
0.35-0.53 at 1,000 users; 10,000 users busy 855 s at 0.86 GiB peak (load 5-9).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ITEMS_PER_WEEK = {"slack": 80, "gmail": 30, "notion": 10, "calendar": 15}
DELIVERABLES = (("slack_channel_digest", [{"platform": "slack", "resource_id": "C01GENERAL"}]),
                ("gmail_inbox_brief", [{"platform": "gmail", "resource_id": "label:INBOX"}]),
                ("status_report", [{"platform": "slack", "resource_id": "C02ENG"},
                                   {"platform": "gmail", "resource_id": "label:INBOX"}]))
PHASES = ("deliverables", "signals", "signals_quiet", "memory")
TARGETS = {
    "signals_1000_s": 45.0, "signals_10000_s": 480.0, "per_user_ratio": 1.25, "rss_gib": 1.0,
    "quiet_ratio": 0.3, "deliverables_1000_s": 600.0, "rewrite_ratio": 2.0,
}
WORDS = ("billing", "migration", "roadmap", "launch", "customer", "review", "budget", "hiring", "incident",
         "release", "design", "contract", "pricing", "onboarding", "security", "metrics", "Q4", "offsite")


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"YARNNN_HOME": str(home), "YARNNN_LLM_MODE": "offline", "DAGSTER_HOME": str(home / "dagster")})
    env.pop("ANTHROPIC_API_KEY", None)
    return env


def anchors(now: dt.datetime | None = None) -> dict[str, dt.datetime]:
    """The benchmark's clock: busy hour = two hours before the current one, quiet hour = the next."""
    now = now or dt.datetime.now(dt.UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    busy = current - dt.timedelta(hours=2)
    return {"now": now, "busy": busy, "quiet": busy + dt.timedelta(hours=1),
            "content_until": busy + dt.timedelta(minutes=50)}


# ------------------------------------------------------------------------------------------ setup
def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def _items(rng: random.Random, uid: str, platform: str, until: dt.datetime) -> list[Any]:
    from yarn_assets.ingest.objects import ContentItem

    week = dt.timedelta(days=7)
    out = []
    for i in range(ITEMS_PER_WEEK[platform]):
        at = until - week * rng.random()
        if platform == "slack":
            ch = ("C01GENERAL", "C02ENG")[i % 2]
            out.append(ContentItem(resource_id=ch, resource_name=ch[3:].lower(), external_id=f"{uid}-s{i}",
                                   content_type="message", content=_text(rng, 25), author=f"peer{i % 7}",
                                   author_id=f"U{i % 7}", thread_id=f"t{i % 11}", occurred_at=at))
        elif platform == "gmail":
            sender = f"peer{i % 9}@example.com"
            out.append(ContentItem(resource_id="label:INBOX", resource_name="INBOX", external_id=f"{uid}-g{i}",
                                   content_type="email", content=_text(rng, 60), title=f"Re: {_text(rng, 4)}",
                                   author=f"Peer {i % 9}", author_id=sender,
                                   participants=[sender, f"{uid}@example.com"], thread_id=f"th{i % 13}",
                                   occurred_at=at))
        elif platform == "notion":
            out.append(ContentItem(resource_id=f"{uid}-page{i}", resource_name=f"Spec {i}", external_id=f"{uid}-n{i}",
                                   content_type="page", content=_text(rng, 120), title=f"Spec {i}", occurred_at=at))
        else:
            start = until + dt.timedelta(hours=rng.randint(2, 24 * 7))
            out.append(ContentItem(resource_id="primary", resource_name="Calendar", external_id=f"{uid}-c{i}",
                                   content_type="event", content=f"{_text(rng, 6)}\nAgenda to be confirmed.",
                                   title=f"Sync {i}", participants=[f"peer{j}@example.com" for j in range(i % 4 + 1)],
                                   occurred_at=start, ends_at=start + dt.timedelta(minutes=45),
                                   source_created_at=until - week * rng.random()))
    return out


def setup(home: Path, users: int, seed: int = 7, lean: bool = False) -> dict[str, Any]:
    """Users, silver, deliverables and activity in ``home`` (runs in the child that owns ``home``).
    ``lean`` (only the memory phase is measured): users and activity only, since the night reads neither
    silver content nor deliverables (10,000 users' silver takes most of the setup time)."""
    import polars as pl

    from control_plane import db
    from control_plane.models import User
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.core.activity_log import ActivityEvent, write_events
    from yarn_assets.deliverables import service
    from yarn_assets.ingest.normalize import items_frame
    from yarn_assets.ingest.silver import merge_platform_content, silver_rows

    t = anchors()
    settings = load_settings()
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    uids = [f"u{n:05d}" for n in range(users)]
    with db.session_scope(url) as s:
        for uid in uids:
            s.add(User(id=uid, email=f"{uid}@example.com", name=uid, tier="pro", timezone="UTC",
                       created_at=t["now"] - dt.timedelta(days=60)))
    store = build_resources(settings)["warehouse"].store
    rng = random.Random(seed)
    rows = 0
    chunk = 250
    for platform in () if lean else ITEMS_PER_WEEK:
        for lo in range(0, users, chunk):
            frames = []
            for uid in uids[lo:lo + chunk]:
                items = _items(rng, uid, platform, t["content_until"])
                for k, it in enumerate(items):
                    it.seq = k
                    if it.source_created_at is None:
                        it.source_created_at = it.occurred_at
                meta = {"user_id": uid, "platform": platform, "source_kind": "import", "connection_id": None,
                        "batch_id": f"bench-{uid}-{platform}", "ingest_date": t["content_until"].date(),
                        "fetched_at": t["content_until"]}
                frame = silver_rows(items_frame(items), meta)
                if platform in ("slack", "gmail", "notion"):  # fetched when it happened (a synced workspace)
                    frame = frame.with_columns(pl.min_horizontal("occurred_at", "fetched_at").alias("fetched_at"))
                frames.append(frame)
            batch = pl.concat(frames, how="vertical_relaxed")
            merge_platform_content(store, batch, now=t["content_until"], check_tombstones=False)
            rows += batch.height
    with db.session_scope(url) as s:
        for uid in [] if lean else uids:
            for dtype, sources in DELIVERABLES:
                service.create_deliverable(s, user_id=uid, deliverable_type=dtype, title=f"{dtype} of {uid}",
                                           sources=sources, run_now=True, now=t["now"] - dt.timedelta(minutes=5))
    kinds = ("deliverable_approved", "deliverable_edited", "deliverable_delivered", "platform_synced")
    events = [
        ActivityEvent(user_id=uid, event_type=kinds[k % len(kinds)], summary=f"{kinds[k % len(kinds)]} {k}",
                      idempotency_key=f"bench|{uid}|{k}", metadata={"deliverable_type": DELIVERABLES[k % 3][0]},
                      created_at=(at := t["busy"] - dt.timedelta(days=30) * rng.random()), event_date=at.date())
        for uid in uids for k in range(10)
    ]
    write_events(store, events)
    return {"users": users, "silver_rows": rows, "deliverables": 0 if lean else users * len(DELIVERABLES),
            "events": len(events)}


# ------------------------------------------------------------------------------------------ phases
class Timer:
    """Times (and with ``--profile`` profiles) only the measured region of a phase."""

    profile = False
    prof: Any = None

    def __enter__(self) -> Timer:
        if Timer.profile:
            import cProfile

            Timer.prof = cProfile.Profile()
            Timer.prof.enable()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        if Timer.prof is not None:
            Timer.prof.disable()


def _definitions():  # type: ignore[no-untyped-def]
    from resources.settings import load_settings
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings())


def _signals_partition(job: Any, hour: dt.datetime) -> list[tuple[str, dict[str, str]]]:
    """The run(s) of one hour: one per shard when the asset has a shard dimension, else one."""
    import dagster as dg

    key = hour.strftime("%Y-%m-%d-%H:00")
    pdef = job.partitions_def
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        names = [d.name for d in pdef.partitions_defs]
        time_dim = next(d.name for d in pdef.partitions_defs
                        if isinstance(d.partitions_def, dg.TimeWindowPartitionsDefinition))
        shard_dim = next(n for n in names if n != time_dim)
        shards = pdef.get_partitions_def_for_dimension(shard_dim).get_partition_keys()
        return [(str(dg.MultiPartitionKey({time_dim: key, shard_dim: s})), {}) for s in shards]
    return [(key, {})]


def _api_server(latency: float) -> Any:
    """The loopback Messages API answering every signal pass with a no_action after ``latency`` s."""
    from tests.fakes.anthropic_server import FakeAnthropic, Reply, tool_use

    def respond(req: Any) -> Reply:
        reply = tool_use({"actions": [], "reasoning": "nothing significant"})(req)
        reply.delay = latency
        return reply

    server = FakeAnthropic(default=respond).__enter__()
    os.environ.update({"ANTHROPIC_API_KEY": "bench-key", "YARNNN_ANTHROPIC_BASE_URL": server.base_url,
                       "YARNNN_LLM_MODE": "api"})
    return server


def phase_signals(hour_name: str) -> dict[str, Any]:
    import dagster as dg

    latency = float(os.environ.get("BENCH_API_LATENCY", "0") or 0)
    server = _api_server(latency) if latency > 0 else None
    defs = _definitions()
    job = defs.resolve_job_def("signals_job")
    hour = anchors()[hour_name]
    runs = 0
    with Timer() as timer:
        for key, _ in _signals_partition(job, hour):
            result = job.execute_in_process(partition_key=key, instance=dg.DagsterInstance.ephemeral(),
                                            raise_on_error=True)
            assert result.success
            runs += 1
    out: dict[str, Any] = {"seconds": timer.seconds, "runs": runs, **_pass_counts(hour)}
    if server is not None:
        out["api_requests"] = len(server.requests)
        server.__exit__(None, None, None)
    return out


def _pass_counts(hour: dt.datetime) -> dict[str, int]:
    """How the hour's passes went, and why the gate let passes through (deferred actions re-open it)."""
    import polars as pl

    from resources.registry import build_resources
    from resources.settings import load_settings

    store = build_resources(load_settings())["warehouse"].store
    lf = store.scan("gold/signal_summaries")
    if lf is None:
        return {}
    df = lf.filter(pl.col("partition_hour") == pl.lit(hour)).collect()
    before = lf.filter(pl.col("partition_hour") == pl.lit(hour - dt.timedelta(hours=1))).collect()
    evaluated = df.filter(pl.col("status") == "evaluated")
    reopened = evaluated.join(before.filter(pl.col("deferred") > 0), on=["user_id", "pass"], how="semi").height
    replayed = evaluated.filter(pl.col("engine") == "deferred").height  # deferred actions run, nothing reloaded
    return {"passes": df.height, "evaluated": evaluated.height,
            "skipped_wake_gate": df.filter(pl.col("skip_reason") == "wake_gate").height,
            "reopened_by_deferred": reopened, "deferred_replayed": replayed,
            "content_loaded": df.filter(pl.col("content_summary").is_not_null()).height,
            "new_items": int(df["new_items"].sum() or 0)}


def phase_memory() -> dict[str, Any]:
    """Yesterday's night: every user shard of the day (``YARNNN_USER_SHARDS``), one after another in this
    process (workers would take them in parallel); the time of each shard is reported too."""
    import dagster as dg

    from resources.settings import load_settings
    from yarn_assets.memory.assets import day_keys

    defs = _definitions()
    job = defs.resolve_job_def("memory_nightly_job")
    day = (anchors()["now"] - dt.timedelta(days=1)).date().isoformat()
    shard_seconds = []
    with Timer() as timer:
        for key in day_keys(day, load_settings().user_shards):
            started = time.perf_counter()
            assert job.execute_in_process(partition_key=key, instance=dg.DagsterInstance.ephemeral()).success
            shard_seconds.append(round(time.perf_counter() - started, 2))
    return {"seconds": timer.seconds, "shards": len(shard_seconds), "shard_seconds": shard_seconds}


def _silver_rewrites(store: Any, since_version: int) -> int:
    table = store.table("silver/platform_content")
    rows = 0
    for commit in table.history():
        if int(commit.get("version", -1)) <= since_version:
            continue
        m = commit.get("operationMetrics") or {}
        rows += int(m.get("num_target_rows_copied", 0) or 0) + int(m.get("num_target_rows_updated", 0) or 0)
    return rows


def phase_deliverables() -> dict[str, Any]:
    import polars as pl

    from resources.settings import load_settings
    from yarn_assets.deliverables.run_resources import run_resources_from_settings

    settings = load_settings()
    with run_resources_from_settings(settings) as res:
        before = res.store.version("silver/platform_content") or 0
        with Timer() as timer:
            outcome = run_rounds(res, anchors()["now"], settings.user_shards)
        seconds = timer.seconds
        retained = (res.store.scan("silver/platform_content").filter(pl.col("retained"))
                    .select(pl.len()).collect().item())
        retained_table = _retained_table_rows(res.store)
        return {"seconds": seconds, **outcome, "silver_rows_rewritten": _silver_rewrites(res.store, before),
                "rows_retained": int(retained) + retained_table,
                "gold_commits": _commits_since(res.store, "gold/deliverable_versions", outcome["gold_version"]),
                "retention_commits": _commits_since(res.store, "gold/retained_items", outcome["marks_version"])}


def _retained_table_rows(store: Any) -> int:
    lf = store.scan("gold/retained_items")
    return 0 if lf is None else int(lf.select("retained_ref").collect().height)


def _commits_since(store: Any, table: str, version: int | None) -> int:
    now = store.version(table)
    return 0 if now is None else now - (-1 if version is None else version)


def run_rounds(res: Any, now: dt.datetime, shards: int) -> dict[str, Any]:
    """Every due deliverable, one round per user shard (grouped by ``shard_of`` as the product's sensor does)."""
    from yarn_assets.core.shards import shard_of
    from yarn_assets.deliverables import service
    from yarn_assets.deliverables.round import RoundItem, run_round

    with res.session_factory() as session:
        due = [(d.id, d.user_id) for d in service.due_deliverables(session, now)]
    by_shard: dict[str, list[Any]] = {}
    for did, uid in due:
        by_shard.setdefault(shard_of(uid, shards), []).append(RoundItem(did, trigger="schedule"))
    versions = {"gold_version": res.store.version("gold/deliverable_versions"),
                "marks_version": res.store.version("gold/retained_items")}
    statuses: dict[str, int] = {}
    for shard, items in sorted(by_shard.items()):
        for out in run_round(res, items, run_id=f"bench-round-{shard}", now=now):
            statuses[out.status] = statuses.get(out.status, 0) + 1
    return {"due": len(due), "statuses": statuses, "runs": len(by_shard), **versions}


def _hot_spots(prof: Any) -> list[str]:
    import pstats

    stats = pstats.Stats(prof)
    mine = ("yarn_assets", "resources", "io_managers", "control_plane")
    rows = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(f"/{m}/" in file for m in mine):
            rows.append((cumtime, tottime, ncalls, f"{file.split('/r-perf/')[-1]}:{line} {name}"))
    top = sorted(rows, reverse=True)[:12]
    own = sorted(rows, key=lambda r: r[1], reverse=True)[:6]
    def line(r: tuple[float, float, int, str]) -> str:
        return f"{r[0]:8.2f}s cum {r[1]:7.2f}s own {r[2]:7d} calls  {r[3]}"

    return [line(r) for r in own] + ["--"] + [line(r) for r in top]


def child(phase: str, users: int, profile: bool, lean: bool = False) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    home = Path(os.environ["YARNNN_HOME"])
    fns: dict[str, Any] = {"setup": lambda: setup(home, users, lean=lean), "deliverables": phase_deliverables,
                           "signals": lambda: phase_signals("busy"), "signals_quiet": lambda: phase_signals("quiet"),
                           "memory": phase_memory}
    Timer.profile = profile and phase != "setup"
    out = fns[phase]()
    hot = _hot_spots(Timer.prof) if Timer.prof is not None else []
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("RESULT " + json.dumps({**out, "phase": phase, "peak_rss": peak, "hot": hot}, default=str))


def _run_child(home: Path, phase: str, users: int, profile: bool, api: dict[str, str] | None = None,
               lean: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.users_scale", "--child", phase, "--users", str(users)]
    if profile:
        cmd.append("--profile")
    if lean:
        cmd.append("--lean")
    t0 = time.perf_counter()
    env = {**_env(home), **(api or {})}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{phase} at {users} users failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    out = json.loads(line[len("RESULT "):])
    out["process_seconds"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------ report
def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _exp(a: tuple[int, float], b: tuple[int, float]) -> str:
    if a[1] <= 0 or b[1] <= 0:
        return "-"
    return f"{math.log(b[1] / a[1]) / math.log(b[0] / a[0]):.2f}"


def report(results: dict[int, dict[str, dict[str, Any]]]) -> None:
    sizes = sorted(results)
    print("\n| phase | " + " | ".join(f"{u:,} users" for u in sizes) + " | growth exponent |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for phase in PHASES:
        cells, points = [], []
        for u in sizes:
            r = results[u].get(phase)
            if r is None:
                cells.append("-")
                continue
            cells.append(f"{r['seconds']:.1f} s ({1000 * r['seconds'] / u:.1f} ms/user, {_gib(r['peak_rss'])})")
            points.append((u, r["seconds"]))
        exps = ", ".join(_exp(points[i], points[i + 1]) for i in range(len(points) - 1)) or "-"
        print(f"| {phase} | " + " | ".join(cells) + f" | {exps} |")
    for u in sizes:
        d = results[u].get("deliverables")
        if d:
            print(f"\n{u:,} users: deliverables {d['due']} due, {d['runs']} round(s), statuses {d['statuses']}; "
                  f"silver rows rewritten {d['silver_rows_rewritten']:,} vs retained {d['rows_retained']:,}; "
                  f"commits: gold versions {d.get('gold_commits')}, retention marks {d.get('retention_commits')}")
        s, q = results[u].get("signals"), results[u].get("signals_quiet")
        if s and q:
            print(f"{u:,} users: quiet hour / busy hour = {q['seconds'] / s['seconds']:.2f}; quiet hour: "
                  f"{q.get('evaluated')} of {q.get('passes')} passes evaluated ({q.get('reopened_by_deferred')} "
                  f"re-opened by actions the previous pass deferred, {q.get('deferred_replayed')} of them executed "
                  f"from the deferring decision without reloading), {q.get('skipped_wake_gate')} skipped by the "
                  f"wake gate, {q.get('content_loaded')} passes loaded content, {q.get('new_items')} new items")
    print("\nTargets:")
    for line in targets(results):
        print("  " + line)
    for u in sizes:
        for phase in PHASES:
            hot = (results[u].get(phase) or {}).get("hot")
            if hot:
                print(f"\nhot spots, {phase} at {u:,} users (project code: top own time, then cumulative):")
                for h in hot:
                    print("  " + h)


def targets(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    def get(u: int, phase: str) -> dict[str, Any] | None:
        return results.get(u, {}).get(phase)

    out = []

    def mark(ok: bool | None, text: str) -> None:
        out.append(f"[{'not measured' if ok is None else 'met' if ok else 'MISSED'}] {text}")

    def offline(r: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if r is None or r.get("api_requests") is not None else r

    api = get(1000, "signals") if (get(1000, "signals") or {}).get("api_requests") is not None else None
    s1k = offline(get(1000, "signals"))
    mark(None if s1k is None else s1k["seconds"] <= TARGETS["signals_1000_s"],
         f"signals 1,000 users <= 45 s: {s1k['seconds']:.1f} s" if s1k else "signals 1,000 users <= 45 s")
    s10k = offline(get(10000, "signals"))
    mark(None if s10k is None else s10k["seconds"] <= TARGETS["signals_10000_s"],
         f"signals 10,000 users <= 8 min: {s10k['seconds']:.0f} s" if s10k else "signals 10,000 users <= 8 min")
    s100 = offline(get(100, "signals"))
    big = s10k or s1k
    if big and s100:
        n = 10000 if s10k else 1000
        ratio = (big["seconds"] / n) / (s100["seconds"] / 100)
        mark(ratio <= TARGETS["per_user_ratio"] if s10k else None,
             f"per-user time at {n:,} / at 100 = {ratio:.2f} (target <= 1.25 at 10,000)")
    peak = max((r["peak_rss"] for u in results for r in results[u].values() if u == max(results)), default=0)
    mark(peak < TARGETS["rss_gib"] * 2**30 if max(results) >= 10000 else None,
         f"peak RSS at {max(results):,} users: {_gib(peak)} (target < 1 GiB at 10,000)")
    q = offline(get(1000, "signals_quiet"))
    others = ", ".join(f"{q2['seconds'] / s2['seconds']:.2f} at {u:,}" for u in sorted(results) if u != 1000
                       and (s2 := offline(get(u, "signals"))) and (q2 := offline(get(u, "signals_quiet"))))
    others = f" (also {others})" if others else ""
    if s1k and q:
        r = q["seconds"] / s1k["seconds"]
        mark(r <= TARGETS["quiet_ratio"], f"quiet hour / busy hour at 1,000 = {r:.2f} (<= 0.3){others}")
    else:
        mark(None, f"quiet hour / busy hour at 1,000 <= 0.3{others}")
    d = get(1000, "deliverables")
    if d:
        mark(d["seconds"] <= TARGETS["deliverables_1000_s"], f"deliverables round 1,000 users x 3 <= 10 min: "
             f"{d['seconds']:.0f} s")
        ratio = d["silver_rows_rewritten"] / max(1, d["rows_retained"])
        mark(ratio <= TARGETS["rewrite_ratio"], f"silver rows rewritten / retained = {ratio:.2f} (<= 2)")
    else:
        mark(None, "deliverables round 1,000 users x 3 <= 10 min; rewritten <= 2 x retained")
    mark(None if api is None else api["seconds"] <= 180.0,
         f"API mode, 1,000 users <= 3 min at concurrency 32: {api['seconds']:.0f} s, {api['api_requests']} calls"
         if api else "API mode, 1 s latency, 1,000 users <= 3 min at concurrency 32 (run with --api)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated user counts")
    parser.add_argument("--full", action="store_true", help="also 10,000 users")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--profile", action="store_true", help="cProfile each phase, print the hot spots")
    parser.add_argument("--out", default=None, help="write the raw results as JSON here")
    parser.add_argument("--api", action="store_true",
                        help="signals phases against the loopback Anthropic server (1 s latency, concurrency 32)")
    parser.add_argument("--latency", type=float, default=1.0, help="--api: seconds per model call")
    parser.add_argument("--concurrency", type=int, default=32, help="--api: YARNNN_LLM_MAX_CONCURRENCY")
    parser.add_argument("--shards", type=int, default=None,
                        help="YARNNN_USER_SHARDS of the phases (memory runs every shard of the night in turn)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--lean", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.users, args.profile, args.lean)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.full and 10000 not in sizes:
        sizes.append(10000)
    phases = [p for p in PHASES if p in args.phases.split(",")]
    results: dict[int, dict[str, dict[str, Any]]] = {}
    if args.shards:
        os.environ["YARNNN_USER_SHARDS"] = str(args.shards)  # inherited by the phase processes (_env)
    for users in sizes:
        home = Path(tempfile.mkdtemp(prefix=f"yarnnn-users-{users}-"))
        info = _run_child(home, "setup", users, False, lean=phases == ["memory"])
        print(f"{users:,} users: setup {info['process_seconds']:.0f} s, {info['silver_rows']:,} silver rows, "
              f"{info['deliverables']:,} deliverables, {info['events']:,} events ({home})", flush=True)
        results[users] = {}
        api = {"BENCH_API_LATENCY": str(args.latency), "YARNNN_LLM_MAX_CONCURRENCY": str(args.concurrency)} \
            if args.api else None
        for phase in phases:
            r = _run_child(home, phase, users, args.profile, api if phase.startswith("signals") else None)
            results[users][phase] = r
            per_shard = f" ({r['shards']} shards: {', '.join(f'{x:.1f}' for x in r['shard_seconds'])} s)" \
                if r.get("shards", 1) > 1 else ""
            print(f"  {phase}: {r['seconds']:.1f} s, peak RSS {_gib(r['peak_rss'])}{per_shard}", flush=True)
    report(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
