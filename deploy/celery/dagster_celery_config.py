"""Celery settings of a yarnnn worker: ``dagster_celery.app`` imports this module when its folder
is on ``PYTHONPATH`` (see deploy/celery/README.md). Built from the same settings and the same
``CELERY_CONFIG_SOURCE`` as the executor, so submitter and workers always agree."""

from resources.settings import load_settings
from yarn_assets.core.executors import celery_worker_conf

globals().update(celery_worker_conf(load_settings()))
