"""Declarative pipelines ("recipes"): a YAML DSL whose steps become Dagster ops of one graph-backed asset.

Operators add a new kind of deliverable or enrichment by writing a recipe file under
``yarn_assets/defs/recipes/<name>/`` instead of Python; ``dg check defs`` and
``yarnnn recipes validate`` check it before anything runs. See ``docs/recipes.md``.

Modules: ``dsl`` (pydantic models of the YAML; its leaf blocks in ``dsl_blocks``), ``source`` (YAML
with line/column positions), ``templates`` (``{{step.field}}`` resolution), ``expressions``
(conditions), ``registry`` (functions and LLM flows a recipe may call), ``validation`` (the four
levels: schema there, ``registry_checks``, ``template_checks``, ``budget``), ``plan`` (the step graph),
``executors`` (what each step type does: ``step_results``, ``llm_steps``, ``table_steps``), ``build``
(graph asset, checks, job; its ops in ``step_ops``/``loop_ops``, names in ``keys``, run inputs in
``inputs``), ``component`` (the ``dg`` component), ``dry_run``.
"""
