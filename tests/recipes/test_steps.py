"""Each step type and the control flow, run as Dagster ops in process against real Delta tables."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from tests.deliverables.helpers import add_user, sample_content, seed_silver
from tests.recipes.helpers import defs_for, output, recipe, run, statuses, valid
from yarn_assets.recipes import build
from yarn_assets.recipes.dsl import RetrySpec


def test_routes_checks_children_and_fallbacks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = valid(recipe("""
        - id: collect
          type: function
          method: test.profile
          inputs: {followers: "{{input.followers}}"}
          check:
            - not_exists: profile.profile_picture
              run: collect_alt
            - boolean: "profile.recent_posts > 0"
              run: sentiment
          on_success:
            routes:
              - match: {expression: "{{collect.profile.followers_count}} > 10000"}
                steps:
                  - id: deep
                    type: function
                    method: test.echo
                    inputs: {value: "{{collect.profile.followers_count}}"}
              - steps:
                  - id: shallow
                    type: function
                    method: test.echo
                    inputs: {value: small}
        - id: collect_alt
          type: function
          method: test.profile
          is_child: true
          inputs: {followers: 1, picture: alt.png}
        - id: sentiment
          type: function
          method: test.echo
          is_child: true
          inputs: {value: "{{collect.profile.recent_posts}}"}
        - id: faces
          type: function
          method: test.echo
          inputs:
            value: {or: ["{{collect.profile.profile_picture}}", "{{collect_alt.profile.profile_picture}}"]}
        - id: breach
          type: function
          method: test.fail
          inputs: {message: "lookup service down"}
          on_error: {fallback_step: breach_cache}
        - id: breach_cache
          type: function
          method: test.echo
          is_child: true
          inputs: {value: cached}
        - id: enrich
          type: function
          method: test.fail
          on_error: {continue_on_failure: true}
        - id: after_enrich
          type: function
          method: test.echo
          inputs: {value: {or: ["{{enrich.value}}", "none"]}}
          depends_on: [enrich]
        """, extra="inputs:\n  followers: {type: integer, required: true}\n"))
    big = run(report, {"followers": 25_000})
    s = statuses(big, report)
    assert big.success
    assert s["collect_alt"] == "ok" and s["sentiment"] == "ok"  # no picture -> fallback child; 25 recent posts
    assert s["deep"] == "ok" and s["shallow"] == "skipped"  # the default route only runs when nothing matched
    assert output(big, report, "faces")["output"]["value"] == "alt.png"  # or: falls back to the child's picture
    assert s["breach"] == "ok" and s["breach_cache"] == "ok"  # handled failure activates the fallback
    assert output(big, report, "sentiment")["output"]["value"] == 25
    assert output(big, report, "enrich")["status"] == "failed" and "boom" in output(big, report, "enrich")["error"]
    assert output(big, report, "after_enrich")["output"]["value"] == "none"

    small = run(report, {"followers": 500})
    s = statuses(small, report)
    assert s["sentiment"] == "skipped" and s["deep"] == "skipped" and s["shallow"] == "ok"
    summary = small.output_for_node(f"{build.asset_key(report.recipe).to_python_identifier()}.t__result")
    assert summary["steps"]["sentiment"] == "skipped" and summary["steps"]["breach_cache"] == "ok"


def test_conditional_parallel_group_and_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = valid(recipe("""
        - id: sources
          type: parallel_group
          max_parallel: 2
          steps:
            - {id: a, type: function, method: test.echo, inputs: {value: [1, 2]}}
            - {id: b, type: function, method: test.echo, inputs: {value: [3]}}
        - id: each
          type: loop
          iterate_over: "{{input.items}}"
          loop_variable: it
          max_parallel: 2
          steps:
            - {id: first, type: function, method: test.echo, inputs: {value: "{{it.name}}-{{sources.a.value}}"}}
            - {id: second, type: function, method: test.echo, inputs: {value: "{{first.value}}!"}}
        - id: big
          type: conditional
          condition: {expression: "len({{each.results}}) >= 2"}
          branches:
            if_true:
              steps:
                - {id: many, type: function, method: test.echo, inputs: {value: "{{each.results[*].second.value}}"}}
            if_false:
              steps:
                - {id: few, type: function, method: test.echo, inputs: {value: few}}
        """, extra="inputs:\n  items: {type: list, default: []}\n"))
    result = run(report, {"items": [{"name": "x"}, {"name": "y"}, {"name": "z"}]})
    s = statuses(result, report)
    assert result.success and s["many"] == "ok" and s["few"] == "skipped"
    assert output(result, report, "sources")["output"] == {"a": output(result, report, "a")["output"],
                                                            "b": output(result, report, "b")["output"]}
    assert output(result, report, "many")["output"]["value"] == ["x-[1, 2]!", "y-[1, 2]!", "z-[1, 2]!"]
    assert {k for k in s if k.startswith("first[")} == {"first[0]", "first[1]", "first[2]"}
    # max_parallel becomes a tag concurrency limit of the recipe's job executor
    job = defs_for(report).resolve_job_def("recipe_t")
    node = job.graph.node_dict[build.asset_key(report.recipe).to_python_identifier()]
    first = node.definition.node_dict["t__first"].definition
    assert first.tags[build.PARALLEL_TAG] == "t.each"
    # zero items: the loop still completes, with no results, and the branch routes to if_false
    empty = run(report, {"items": []})
    assert empty.success and statuses(empty, report)["few"] == "ok"
    assert output(empty, report, "each__collect")["output"]["count"] == 0


def test_retry_policy_retries_transient_failures_with_capped_backoff(tmp_path) -> None:  # type: ignore[no-untyped-def]
    counter = tmp_path / "flaky.txt"
    text = recipe(f"""
        - id: flaky
          type: function
          method: test.flaky
          inputs: {{counter: "{counter}", fail_times: 2}}
          retry_policy: {{max_attempts: 3, backoff: exponential, delay_seconds: 0, max_backoff_seconds: 0}}
        """)
    report = valid(text)
    result = run(report)
    assert result.success
    assert output(result, report, "flaky")["output"]["attempt"] == 3
    assert output(result, report, "flaky")["attempts"] == 3
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 2
    op = defs_for(report).resolve_job_def("recipe_t").graph.node_dict["gold__recipes__t"].definition \
        .node_dict["t__flaky"].definition
    assert op.retry_policy == dg.RetryPolicy(max_retries=2, delay=0, backoff=dg.Backoff.EXPONENTIAL)

    counter.unlink()
    too_few = valid(text.replace("max_attempts: 3", "max_attempts: 2"))
    failed = run(too_few)
    assert not failed.success and statuses(failed, too_few)["flaky"] == "failed"
    assert len(counter.read_text().splitlines()) == 2  # exactly max_attempts executions


def test_backoff_is_capped_by_max_backoff_seconds() -> None:
    spec = RetrySpec(max_attempts=6, backoff="exponential", delay_seconds=2, max_backoff_seconds=10)
    assert [spec.wait_before(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    assert [RetrySpec(backoff="linear", delay_seconds=3).wait_before(n) for n in (1, 2, 3)] == [3, 6, 9]
    assert RetrySpec(backoff="constant", delay_seconds=5).wait_before(4) == 5


def test_template_errors_fail_the_step_without_retrying(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = valid(recipe("""
        - {id: a, type: function, method: test.echo, inputs: {value: {x: 1}}}
        - id: b
          type: function
          method: test.echo
          inputs: {value: "{{a.value.y}}"}
          retry_policy: {max_attempts: 5, delay_seconds: 0}
        """))
    result = run(report)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "Field 'y' not found at 'a.value'" in failure.event_specific_data.error.message
    assert "fields that exist: x" in failure.event_specific_data.error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_read_asset_reads_one_users_rows_with_filters(settings, store) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seed_silver(store, sample_content("alice", now) + sample_content("bob", now))
    report = valid(recipe("""
        - id: slack
          type: read_asset
          table: silver/platform_content
          filter: {user_id: "{{input.user}}", platform: [slack]}
          since: {column: occurred_at, hours: 4.5}
          columns: [user_id, resource_name, content, occurred_at]
          order_by: [{column: occurred_at, descending: true}]
          limit: 1
        - id: per_platform
          type: data_transform
          table: silver/platform_content
          filter: {user_id: "{{input.user}}"}
          group_by: [platform]
          aggregate: {items: count, last: "max:occurred_at"}
        """, extra="inputs:\n  user: {type: string, required: true}\n"))
    result = run(report, {"user": "alice", "now": now.isoformat()})
    assert result.success
    out = output(result, report, "slack")["output"]
    assert out["count"] == 1 and out["truncated"] is True  # two slack rows in the last 4.5 h, limit 1
    assert out["rows"][0]["user_id"] == "alice" and out["rows"][0]["content"].startswith("Build is red")
    agg = {r["platform"]: r["items"] for r in output(result, report, "per_platform")["output"]["rows"]}
    assert agg == {"calendar": 2, "gmail": 2, "notion": 1, "slack": 3}


def test_inline_llm_flow_offline_is_deterministic_and_labelled(settings) -> None:  # type: ignore[no-untyped-def]
    add_user(settings.resolved_control_plane_url, "alice")
    report = valid(recipe("""
        - id: ask
          type: llm_flow
          inputs: {user_id: alice}
          prompt: {user: "Summarize for {{input.who}}:\\nline one\\nline two"}
          output: {summary: str, points: "list[str]", urgent: bool}
        - id: templated
          type: llm_flow
          inputs: {user_id: alice}
          prompt: {user: "x"}
          output: text
          offline: "Dear {{input.who}}, {{ask.summary}}"
        """, extra="inputs:\n  who: {type: string, default: Ana}\n"))
    first = run(report)
    second = run(report)
    ask = output(first, report, "ask")["output"]
    assert ask == output(second, report, "ask")["output"]
    assert ask["summary"] == "Summarize for Ana:" and ask["points"][1:] == ["line one", "line two"]
    assert ask["urgent"] is False and ask["llm"]["model"] == "offline-rules" and ask["llm"]["offline"] is True
    assert output(first, report, "templated")["output"]["text"] == "Dear Ana, Summarize for Ana:"


def test_wait_for_asset_waits_for_a_materialization(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = valid(recipe("""
        - id: fresh
          type: wait_for_asset
          assets: [silver/platform_content]
          timeout_minutes: 0.02
          poll_interval_seconds: 0.2
        """))
    with dg.instance_for_test() as instance:
        missing = run(report, instance=instance)
        assert not missing.success
        err = next(e for e in missing.all_events if e.event_type_value == "STEP_FAILURE")
        assert "no materialization of silver/platform_content within 0.02 min" in err.event_specific_data.error.message
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["silver", "platform_content"]))
        found = run(report, instance=instance)
        assert found.success
        assert "silver/platform_content" in output(found, report, "fresh")["output"]["assets"]


def test_inputs_are_checked_before_any_step(tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = valid(recipe("- {id: a, type: function, method: test.echo, inputs: {value: '{{input.n}}'}}",
                          extra="inputs:\n  n: {type: integer, required: true}\n"))
    bad = run(report, {"n": "seven", "extra": 1})
    assert not bad.success
    err = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE").event_specific_data.error.message
    assert "unknown input extra" in err and "input 'n' must be integer, got str" in err
    assert "a" not in statuses(bad, report)  # nothing ran
    with pytest.raises(dg.Failure, match="input 'n' is required"):
        run(report, {}, raise_on_error=True)
