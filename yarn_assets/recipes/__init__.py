"""Declarative pipelines ("recipes"): a YAML DSL whose steps become Dagster ops of one graph-backed asset.

Operators add a new kind of deliverable or enrichment by writing a recipe file under
``yarn_assets/defs/recipes/<name>/`` instead of Python; ``dg check defs`` and
``yarnnn recipes validate`` check it before anything runs. See ``docs/recipes.md``.

Modules: ``dsl`` (pydantic models of the YAML), ``source`` (YAML with line/column positions),
``templates`` (``{{step.field}}`` resolution), ``expressions`` (conditions), ``registry``
(functions and LLM flows a recipe may call), ``validation`` (the four levels), ``plan`` (the step
graph), ``executors`` (what each step type does), ``build`` (ops, graph asset, checks, job),
``component`` (the ``dg`` component), ``dry_run``.
"""
