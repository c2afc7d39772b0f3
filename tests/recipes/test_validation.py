"""The four validation levels, each error message checked, and `yarnnn recipes validate`."""

from __future__ import annotations

from click.testing import CliRunner

from tests.recipes.helpers import recipe
from yarn_assets.cli import main
from yarn_assets.recipes.dsl import Prompt
from yarn_assets.recipes.validation import BudgetPolicy, validate_text


def messages(report, level):  # type: ignore[no-untyped-def]
    return [(e.line, e.column, e.step, e.message) for e in report.by_level(level)]


def test_schema_level_reports_every_error_with_its_line_and_column() -> None:
    text = recipe("""
        - id: collect_twitter
          type: crawler
          method: crawler_twitter_profile
        - id: train
          type: ml_training
        - id: typo
          type: functon
        - id: extra
          type: function
          method: test.echo
          retrys: 3
        - id: Bad-Id
          type: function
          method: test.echo
        - id: loopy
          type: llm_flow
          flow: x
          prompt: {user: "y"}
        """)
    report = validate_text(text)
    assert not report.ok and report.recipe is None
    errors = messages(report, "schema")
    by_step = {step: (line, col, msg) for line, col, step, msg in errors}
    assert by_step["collect_twitter"] == (
        7, 11, "steps.0.type: step type 'crawler' is not supported here: crawlers have no place here: platform "
               "content arrives through syncs and imports (silver/platform_content); read it with a read_asset step")
    assert by_step["train"][:2] == (10, 11) and "model training is not run by recipes" in by_step["train"][2]
    assert by_step["typo"][:2] == (12, 11) and "unknown step type; use one of: function, llm_flow" in by_step["typo"][2]
    assert "(got 'functon')" in by_step["typo"][2]
    assert by_step["extra"][:2] == (16, 13) and by_step["extra"][2] == "steps.3.retrys: Extra inputs are not permitted"
    assert by_step["Bad-Id"][:2] == (17, 9) and "should match pattern" in by_step["Bad-Id"][2]
    assert "either flow (a registered flow) or prompt (inline), not both" in by_step["loopy"][2]
    assert len(errors) == 6  # all at once


def test_schema_level_refuses_unreadable_files() -> None:
    dup = validate_text('version: "1.0"\npipeline_id: a\npipeline_id: b\n')
    assert [str(e) for e in dup.errors] == ["schema: line 3, column 1: duplicate key 'pipeline_id'"]
    big = validate_text("x: " + "a" * 3000, BudgetPolicy(max_file_bytes=1024))
    assert "the limit is 1,024 (recipe_max_file_bytes)" in big.errors[0].message
    deep = validate_text("a: " + "[" * 40 + "]" * 40)
    assert "nests deeper than 32 levels" in deep.errors[0].message
    code = validate_text("a: !!python/object/apply:os.system [ls]")
    assert code.errors[0].message == "unsupported YAML: tag 'tag:yaml.org,2002:python/object/apply:os.system' " \
        "(only plain YAML data is accepted)"


def test_registry_level_checks_methods_flows_signatures_and_tables() -> None:
    report = validate_text(recipe("""
        - id: a
          type: function
          method: test.nope
        - id: b
          type: function
          method: test.flaky
          inputs: {counter: x, retries: 2}
        - id: c
          type: llm_flow
          flow: research.planner
        - id: d
          type: read_asset
          table: silver/platform_contents
        - id: e
          type: read_asset
          table: silver/platform_content
          filter: {platform: slack}
          columns: [content, colour]
        - id: f
          type: function
          method: test.profile
          inputs: {followers: 1}
          outputs: {profile: p, avatar: a}
        """))
    errors = {step: msg for _, _, step, msg in messages(report, "registry")}
    msgs = [msg for _, _, _, msg in messages(report, "registry")]
    assert errors["a"].startswith("unknown function 'test.nope'; registered: ") and "test.echo" in errors["a"]
    assert "unknown input retries for 'test.flaky'; it takes: counter, fail_times" in msgs
    assert "'test.flaky' needs input fail_times" in msgs
    assert errors["c"].startswith("unknown flow 'research.planner'; registered: deliverables.compose, research.plan")
    assert errors["d"].startswith("unknown table 'silver/platform_contents'; tables: ")
    assert "silver/platform_content has no column 'colour'; columns: user_id, platform" in msgs[5] or any(
        m.startswith("silver/platform_content has no column 'colour'") for m in msgs)
    assert any(m.startswith("silver/platform_content holds every user's rows: filter on user_id") for m in msgs)
    assert errors["f"] == "'test.profile' does not produce avatar; it produces: profile"
    positions = {step: (line, col) for line, col, step, _ in messages(report, "registry")}
    assert positions["a"] == (8, 13)  # the method value


def test_dependency_level_names_missing_steps_cycles_and_unreachable_children() -> None:
    report = validate_text(recipe("""
        - id: a
          type: function
          method: test.echo
          depends_on: [ghost]
          inputs: {value: "{{c.value}}"}
        - id: b
          type: function
          method: test.echo
          inputs: {value: "{{a.value}}"}
        - id: c
          type: function
          method: test.echo
          inputs: {value: "{{b.value}}"}
        - id: orphan
          type: function
          method: test.echo
          is_child: true
        - id: d
          type: function
          method: test.profile
          inputs: {followers: "{{input.followers}}"}
          check:
            - exists: profile
              run: e
        - id: e
          type: function
          method: test.echo
          inputs: {value: "{{d.profil}} {{d.profile[*]}} {{zed.x}} {{input.nope}}"}
        - id: f
          type: read_asset
          table: silver/activity_log
          filter: {user_id: u}
        - id: g
          type: function
          method: test.echo
          inputs: {value: "{{f.count[*]}}"}
        """))
    msgs = [msg for _, _, _, msg in messages(report, "dependency")]
    assert "Step 'ghost' not found; steps that exist: a, b, c, d, e, f, g, orphan; fix the depends_on entry" in msgs
    assert "dependency cycle: a -> c -> b -> a" in msgs
    assert "is_child step 'orphan' is never activated: no check, route or on_error.fallback_step names it" in msgs
    assert "check of step 'd' names step 'e', which is not is_child: true (a step that only runs when activated " \
           "must say so)" in msgs
    assert "Field 'profil' not found in step 'd' (in {{d.profil}}); fields that exist: profile" in msgs
    assert any(m.startswith("Step 'zed' not found; steps that exist:") and "fix the step id in the template" in m
               for m in msgs)
    assert "Field 'nope' not found in input (in {{input.nope}}); inputs that exist: now" in msgs
    assert "Cannot apply [*] to non-array at 'f.count' (in {{f.count[*]}}): it is number" in msgs
    assert not report.by_level("schema") and not report.by_level("registry")


def test_budget_level_estimates_tokens_and_cost_against_the_tier() -> None:
    steps = """
        - id: summarize
          type: loop
          iterate_over: "{{input.items}}"
          max_items: 40
          steps:
            - id: one
              type: llm_flow
              inputs: {user_id: u}
              prompt: {user: "Summarize {{item.text}} for {{item.who}}"}
              output: text
              max_tokens: 1000
        - id: gpu
          type: function
          method: test.echo
          resources: {gpu: 1, memory: 8Gi}
        - id: big
          type: read_asset
          table: silver/activity_log
          filter: {user_id: u}
          limit: 9000
        """
    report = validate_text(recipe(steps, extra="inputs:\n  items: {type: list}\n"))
    msgs = [msg for _, _, _, msg in messages(report, "budget")]
    # each call: the prompt's own characters / 4 + 1, plus 500 per template (2), and max_tokens out; x 40 items
    system = Prompt.model_fields["system"].default
    per_call = (len(system) + len("Summarize  for ")) // 4 + 1 + 2 * 500
    assert per_call == 1019
    assert report.estimate is not None and report.estimate.input_tokens == 40 * per_call
    assert report.estimate.output_tokens == 40 * 1000 and report.estimate.llm_calls == 40
    assert report.estimate.cost_usd == round(40 * (per_call * 3 + 1000 * 15) / 1e6, 6)  # Sonnet: $3/$15 per M
    assert "estimated 80,760 LLM tokens (≈ $0.72) per run exceed the free tier's daily budget of 50,000 tokens " \
           "(40 calls)" in msgs
    assert "step 'gpu' requests 1 GPU(s); this platform runs steps on CPU workers only (no GPU is ever available)" \
        in msgs
    assert "step 'big' reads up to 9,000 rows; the limit is 5,000 (YARNNN_RECIPE_MAX_ROWS)" in msgs
    assert any("cpu/memory requests are not enforced" in str(w) for w in report.warnings)
    # the same recipe fits a starter budget (but not a tighter max_cost_usd)
    starter = validate_text(recipe(steps, extra="inputs:\n  items: {type: list}\nbudget: {tier: starter, "
                                                "max_cost_usd: 0.5}\n"))
    budget_msgs = [msg for _, _, _, msg in messages(starter, "budget")]
    assert not any("daily budget" in m for m in budget_msgs)
    assert "estimated cost $0.7223 per run exceeds budget.max_cost_usd $0.5000" in budget_msgs


def test_shipped_recipes_are_valid() -> None:
    from pathlib import Path

    from yarn_assets.recipes.validation import validate_file

    root = Path(__file__).resolve().parents[2] / "yarn_assets" / "defs" / "recipes"
    for path in sorted(root.glob("*/recipe.yaml")):
        report = validate_file(path)
        assert report.ok, report.text()


def test_cli_prints_all_errors_with_their_levels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe("""
        - id: a
          type: function
          method: test.nope
          depends_on: [b]
        - id: b
          type: function
          method: test.echo
          inputs: {value: "{{a.value}}"}
          resources: {gpu: 2}
        """))
    result = CliRunner().invoke(main, ["recipes", "validate", str(bad)])
    assert result.exit_code == 1
    out = result.output
    assert "registry: 1 error\n  line 8, column 13: [a] unknown function 'test.nope'" in out
    assert "dependency: 1 error\n  line 6, column 5: [a] dependency cycle: a -> b -> a" in out
    assert "budget: 1 error\n" in out and "[b] step 'b' requests 2 GPU(s)" in out
    assert "Error: " in out and "3 error(s)" in out

    good = tmp_path / "good.yaml"
    good.write_text(recipe("- {id: a, type: function, method: test.echo, inputs: {value: 1}}"))
    ok = CliRunner().invoke(main, ["recipes", "validate", str(good), "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert "valid (t: 1 steps, 0 LLM call(s), ~0 tokens" in ok.output
    assert "a                    ok       {\"now\":" in ok.output and "\"value\": 1" in ok.output
