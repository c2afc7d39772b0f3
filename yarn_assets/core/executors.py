"""The run executor, chosen by ``YARNNN_EXECUTOR`` when definitions load.

- ``multiprocess`` (default): one spawned process per step (deltalake's tokio runtime does not
  survive ``fork``, so never the fork start method);
- ``in_process``: every step in the run worker (tests, small installs);
- ``celery``: steps become Celery tasks on the broker of ``YARNNN_CELERY_BROKER_URL`` (Redis or
  RabbitMQ); any number of ``celery -A dagster_celery.app worker`` processes on any host run them
  (``deploy/celery/``). The broker URL may hold a password, so the executor config names the
  environment variable instead of carrying the value (run config and the UI never see it);
- ``k8s``: one Kubernetes Job per step (``dagster_k8s.k8s_job_executor``) from the user-code
  image, env from the install's Secret, requests/limits per step (``deploy/k8s/``).

Celery is configured for at-least-once steps: a task is acknowledged only when it finished
(``task_acks_late``) and goes back to the queue when the process running it dies
(``task_reject_on_worker_lost``), so a SIGKILLed worker's step runs again elsewhere. Every step is
idempotent per partition (docs/ARCHITECTURE.md), which is what makes running one twice safe.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from resources.settings import YarnSettings

BROKER_ENV = "YARNNN_CELERY_BROKER_URL"
BACKEND_ENV = "YARNNN_CELERY_BACKEND_URL"

#: A Redis broker hands an unacknowledged task to another worker after this long. It must exceed the
#: longest step (nightly memory may wait on a Message Batch for memory_batch_timeout_seconds = 6 h),
#: or a step still running would be delivered twice. A dead worker *process* is noticed at once
#: (task_reject_on_worker_lost); a whole host lost with a Redis broker is redelivered after this.
REDIS_VISIBILITY_TIMEOUT_SECONDS = 7 * 3600

#: Celery settings shared by the executor (the run worker that submits) and the workers.
CELERY_CONFIG_SOURCE: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker takes one step at a time: the others stay on the queue
    "task_default_queue": "dagster",
    "task_default_priority": 5,
    "result_expires": 7 * 24 * 3600,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS,
        # publishing a step survives a short broker outage (restart) instead of failing the run
        "max_retries": 30,
        "interval_start": 0,
        "interval_step": 1,
        "interval_max": 5,
    },
    "result_backend_transport_options": {"retry_policy": {"timeout": 60.0}},
}


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "redis+socket://"))


def celery_backend_source(settings: YarnSettings) -> str | dict[str, str]:
    """Executor ``backend`` value: the env var holding it, or ``rpc://`` (AMQP brokers only)."""
    if settings.celery_backend_url is not None:
        return {"env": BACKEND_ENV}
    broker = settings.celery_broker_url.get_secret_value() if settings.celery_broker_url else ""
    return {"env": BROKER_ENV} if _is_redis(broker) else "rpc://"


def celery_executor_config(settings: YarnSettings) -> dict[str, Any]:
    """The ``celery_executor`` config: env-sourced URLs, the shared Celery settings, step retries on."""
    return {
        "broker": {"env": BROKER_ENV},
        "backend": celery_backend_source(settings),
        "config_source": CELERY_CONFIG_SOURCE,
        "retries": {"enabled": {}},
    }


def celery_worker_conf(settings: YarnSettings) -> dict[str, Any]:
    """Settings of a Celery worker process (``deploy/celery/dagster_celery_config.py`` loads them)."""
    if settings.celery_broker_url is None:
        raise ValueError(f"a Celery worker needs {BROKER_ENV} to be set")
    broker = settings.celery_broker_url.get_secret_value()
    if settings.celery_backend_url is not None:
        backend = settings.celery_backend_url.get_secret_value()
    else:
        backend = broker if _is_redis(broker) else "rpc://"
    return {"broker_url": broker, "result_backend": backend, **CELERY_CONFIG_SOURCE}


#: Requests/limits of one step pod: a step holds one partition's frames in polars (see the
#: benchmarks' peak RSS), so memory is the limit that matters; CPU is a burst allowance.
K8S_STEP_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"cpu": "2", "memory": "4Gi"},
}


def k8s_executor_config(settings: YarnSettings) -> dict[str, Any]:
    """The ``k8s_job_executor`` config: the user-code image, env from the install's Secret(s)."""
    return {
        "job_image": settings.k8s_image,
        "image_pull_policy": "IfNotPresent",
        "job_namespace": settings.k8s_namespace,
        "env_secrets": list(settings.k8s_env_secrets),
        "env_vars": ["YARNNN_EXECUTOR=k8s"],
        "load_incluster_config": True,
        "max_concurrent": settings.executor_max_concurrent,
        "labels": {"app.kubernetes.io/part-of": "yarnnn"},
        "step_k8s_config": {"container_config": {"resources": K8S_STEP_RESOURCES}},
        "retries": {"enabled": {}},
    }


def build_executor(settings: YarnSettings) -> dg.ExecutorDefinition:
    """The executor the settings ask for (imports of the optional engines happen only when chosen)."""
    if settings.executor == "in_process":
        return dg.in_process_executor
    if settings.executor == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_executor_config(settings), name="celery")
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(settings), name="k8s")
    return dg.multiprocess_executor.configured(
        {"max_concurrent": settings.executor_max_concurrent, "start_method": {"spawn": {}}}
    )
