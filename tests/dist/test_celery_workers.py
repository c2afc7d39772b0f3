"""dagster-celery, really running: two `celery worker` processes on a Redis (or RabbitMQ) broker
execute the steps of the nightly memory job of a week of sample users, on a PostgreSQL Dagster
instance; the steps land on both workers and the tables equal an in-process run's.

The fan-out is per step (facts, session summaries and activity patterns of a run in parallel) and
per user shard: the night is two (day, shard) runs (``YARNNN_USER_SHARDS=2``), each of the shard's users.
"""

import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from io_managers.delta_store import DeltaStore
from resources.settings import YarnSettings, load_settings
from tests.dist.conftest import RABBITMQ_URL, REDIS_URL, REPO, require_service
from tests.dist.engines import CeleryWorkers, submit
from tests.dist.scenario import nights, register_chats, run_in_process, seed_users
from tests.dist.snapshot import celery_hosts, diff_tables, table_rows
from yarn_assets.core.executors import CELERY_CONFIG_SOURCE, celery_worker_conf
from yarn_assets.memory.assets import day_keys

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

NIGHTS = 1
SHARDS = 2


def memory_job() -> dg.JobDefinition:
    """Reconstructed in every worker from the same settings (YARNNN_EXECUTOR=celery)."""
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings()).resolve_job_def("memory_nightly_job")


def _env(home: Path, broker: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("YARNNN_")}
    return {**base, "YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "celery", "YARNNN_CELERY_BROKER_URL": broker,
            "YARNNN_USER_SHARDS": str(SHARDS)}


def _reference(settings: YarnSettings, source: Path, keys: list[str], tmp: Path) -> DeltaStore:
    """The same partitions in process, from a copy of the landed state: the expected tables."""
    from yarn_assets.definitions import build_definitions

    home = tmp / "reference_home"
    shutil.copytree(source, home)
    ref = YarnSettings(home=home, executor="in_process")
    defs = build_definitions(ref)
    (tmp / "reference_dh").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp / "reference_dh")) as instance:
        for key in keys:
            run_in_process(defs, "memory_nightly_job", key, instance)
    return DeltaStore(ref.resolved_warehouse_root)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_two_celery_workers_run_the_nightly_memory_job(broker, pg_instance_home, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if broker == "redis":
        require_service("Redis", 6379)
        url = REDIS_URL.format(db=7)
        import redis

        redis.Redis.from_url(url).flushdb()  # a database of its own on the machine's Redis
    else:
        require_service("RabbitMQ", 5672)
        url = RABBITMQ_URL
    home = tmp_path / "yarnnn_home"
    env = _env(home, url)
    for name in ("YARNNN_EXECUTOR", "YARNNN_CELERY_BROKER_URL", "YARNNN_USER_SHARDS"):
        monkeypatch.setenv(name, env[name])
    settings = load_settings()
    assert settings.executor == "celery"
    conf = celery_worker_conf(settings)
    assert conf["broker_url"] == url and conf["result_backend"] == (url if broker == "redis" else "rpc://")
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seed_users(settings, now)
    register_chats(settings, now, tmp_path / "chats")
    from yarn_assets.definitions import build_definitions

    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        run_in_process(defs, "chat_ingest_job", now.date().isoformat(), instance)
    keys = [key for night in nights(now, NIGHTS) for key in day_keys(night, SHARDS)]
    reference = _reference(settings, home, keys, tmp_path)

    with CeleryWorkers(REPO, {**env, "DAGSTER_HOME": str(pg_instance_home)}, ["w1", "w2"],
                       log_dir=tmp_path / "logs") as workers, dg.DagsterInstance.get() as instance:
        hosts: dict[str, set[str]] = {}
        for key in keys:
            run_id = submit(memory_job, key)
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS, [
                workers.log_tail(n) for n in ("w1", "w2")]
            for step, host in celery_hosts(instance, run_id).items():
                hosts.setdefault(host.split("@")[0], set()).add(step)
            starts = {r.dagster_event.pid for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)}
            assert os.getpid() not in starts  # no step ran in the submitting process
    assert set(hosts) == {"w1", "w2"}, hosts  # both workers ran steps
    assert set().union(*hosts.values()) == {"gold__memory_facts", "gold__session_summaries",
                                             "gold__activity_patterns"}
    got = table_rows(DeltaStore(settings.resolved_warehouse_root))
    assert not diff_tables(table_rows(reference), got)
    assert got["gold/memory_facts"].height > 0 and got["gold/session_summaries"].height > 0


def test_executor_and_worker_share_one_configuration(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The broker URL stays in the environment: the executor config names the variable."""
    from yarn_assets.core.executors import build_executor, celery_executor_config

    monkeypatch.setenv("YARNNN_EXECUTOR", "celery")
    monkeypatch.setenv("YARNNN_CELERY_BROKER_URL", "amqp://svc:s3cret@mq.internal:5672//")
    settings = load_settings()
    config = celery_executor_config(settings)
    assert config["broker"] == {"env": "YARNNN_CELERY_BROKER_URL"} and config["backend"] == "rpc://"
    assert "s3cret" not in repr(config)
    assert config["config_source"] is CELERY_CONFIG_SOURCE
    assert build_executor(settings).name == "celery"
    monkeypatch.setenv("YARNNN_CELERY_BROKER_URL", "redis://:s3cret@cache.internal:6379/0")
    assert celery_executor_config(load_settings())["backend"] == {"env": "YARNNN_CELERY_BROKER_URL"}
    monkeypatch.delenv("YARNNN_CELERY_BROKER_URL")
    from resources.settings import SettingsError

    with pytest.raises((SettingsError, ValueError), match="YARNNN_CELERY_BROKER_URL"):
        load_settings()
