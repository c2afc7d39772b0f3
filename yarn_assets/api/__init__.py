"""The HTTP API for the product's front end (FastAPI): ``yarnnn serve api`` or ``python -m yarn_assets.api``.

A serving layer: it reads the control plane and the warehouse for the authenticated user only and
writes through the domains' service functions; work (signal passes, deliverable runs, syncs) is
submitted to the Dagster instance as runs, never executed in this process. OpenAPI docs at ``/docs``.
"""
