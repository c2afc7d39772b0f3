"""A failing asset produces a run_failed event and an operator alert on a loopback SMTP and Slack server."""

import json

import dagster as dg
import pytest

from resources.notifier import NotificationError, Notifier
from resources.registry import build_resources
from resources.settings import SettingsError, load_settings
from sensors.ops import OPERATOR_USER, run_failure_alerts, users_from_tags
from tests.fakes.slack_web import SlackWebApi
from tests.fakes.smtp import SmtpServer
from yarn_assets.core.activity_log import read_events

TOKEN = "xoxb-ops-test-token-123"


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    with SmtpServer() as server:
        yield server


@pytest.fixture
def slack():  # type: ignore[no-untyped-def]
    with SlackWebApi(token=TOKEN) as server:
        yield server


@pytest.fixture
def alert_env(monkeypatch, smtp, slack):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARNNN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("YARNNN_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("YARNNN_OPERATOR_EMAIL", "ops@example.com")
    monkeypatch.setenv("YARNNN_SLACK_BASE_URL", slack.base_url)
    monkeypatch.setenv("YARNNN_SLACK_DELIVERY_TOKEN", TOKEN)
    monkeypatch.setenv("YARNNN_OPERATOR_SLACK_CHANNEL", "#yarnnn-ops")
    monkeypatch.setenv("YARNNN_DAGSTER_WEBSERVER_URL", "http://ops.example:3000")
    return load_settings()


@dg.asset(group_name="ops", description="Always fails (test).")
def exploding_asset() -> None:
    raise RuntimeError("upstream API returned 500 for channel C123")


def _defs(settings) -> dg.Definitions:  # type: ignore[no-untyped-def]
    res = build_resources(settings)
    return dg.Definitions(assets=[exploding_asset], sensors=[run_failure_alerts],
                          resources={"warehouse": res["warehouse"], "notifier": res["notifier"]})


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult | None:
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def("run_failure_alerts")
    res = build_resources(load_settings())
    with dg.build_sensor_context(instance=instance, repository_def=repo, cursor=cursor,
                                 resources={"warehouse": res["warehouse"], "notifier": res["notifier"]}) as ctx:
        return sensor.evaluate_tick(ctx)


def test_failed_run_writes_event_and_alerts_by_mail_and_slack(alert_env, smtp, slack, store) -> None:  # type: ignore[no-untyped-def]
    defs = _defs(alert_env)
    with dg.instance_for_test() as instance:
        first = _tick(defs, instance, None)  # a run-status sensor starts from "now"
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        tags={"yarnnn/user_id": "alice", "dagster/partition": "2026-11-20|slack"})
        assert not result.success
        tick = _tick(defs, instance, first.cursor)
        assert tick.cursor != first.cursor
        again = _tick(defs, instance, tick.cursor)  # processed once: no second alert

    mails = smtp.wait_for(1)
    assert len(mails) == 1 and again is not None
    mail = mails[0]
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.subject == "[yarnnn] run failed: __ASSET_JOB [2026-11-20|slack]"
    assert "upstream API returned 500 for channel C123" in mail.text()
    assert f"http://ops.example:3000/runs/{result.run_id}" in mail.text()
    assert "Open the run" in mail.html()
    assert len(slack.messages) == 1
    post = slack.messages[0]
    assert post.channel == "#yarnnn-ops" and post.token == f"Bearer {TOKEN}"
    assert "run failed: __ASSET_JOB" in post.text and "exploding_asset" in post.text
    assert TOKEN not in mail.raw.decode(errors="replace") and TOKEN not in post.text

    events = read_events(store, event_types=["run_failed"])
    assert events["user_id"].to_list() == ["alice"]
    meta = json.loads(events["metadata"][0])
    assert meta["run_id"] == result.run_id and meta["failed_steps"][0]["step"] == "exploding_asset"
    assert set(meta["notified"]) == {"email", "slack"}
    assert all(v.startswith("sent") for v in meta["notified"].values())


def test_failure_without_user_goes_to_operator_and_a_dead_channel_does_not_stop_the_other(
        alert_env, smtp, slack, store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    slack.fail_next.append((200, {"ok": False, "error": "channel_not_found"}, {}))
    defs = _defs(alert_env)
    with dg.instance_for_test() as instance:
        first = _tick(defs, instance, None)
        defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, raise_on_error=False)
        _tick(defs, instance, first.cursor)
    assert len(smtp.wait_for(1)) == 1
    events = read_events(store, event_types=["run_failed"])
    assert events["user_id"].to_list() == [OPERATOR_USER]
    notified = json.loads(events["metadata"][0])["notified"]
    assert notified["email"].startswith("sent")
    assert notified["slack"] == "failed: Slack chat.postMessage to #yarnnn-ops failed: channel_not_found"


def test_users_from_tags() -> None:
    assert users_from_tags({"yarnnn/users": "bob, alice", "yarnnn/user_id": "alice"}) == ["alice", "bob"]
    assert users_from_tags({"dagster/partition": "x"}) == [OPERATOR_USER]


def test_notifier_mail_retries_transient_smtp_errors(smtp) -> None:  # type: ignore[no-untyped-def]
    smtp.fail_next.append("451 4.3.0 try again later")
    notifier = Notifier(smtp_host="127.0.0.1", smtp_port=smtp.port, mail_from="yarnnn <bot@yarnnn.test>")
    message_id = notifier.send(["a@example.com", "b@example.com"], "Weekly brief", "plain body",
                               "<p>html body</p>", headers={"Message-ID": "<fixed@yarnnn.test>"})
    mails = smtp.wait_for(1)
    assert message_id == "<fixed@yarnnn.test>" and len(mails) == 1
    assert mails[0].rcpt_tos == ["a@example.com", "b@example.com"]
    assert mails[0].text().strip() == "plain body" and "html body" in mails[0].html()
    assert mails[0].message["Message-ID"] == "<fixed@yarnnn.test>"
    smtp.fail_next.append("550 5.1.1 mailbox unavailable")
    with pytest.raises(NotificationError, match="550"):
        notifier.send("a@example.com", "s", "t")
    with pytest.raises(NotificationError, match="YARNNN_SMTP_HOST"):
        Notifier().send("a@example.com", "s", "t")
    with pytest.raises(NotificationError, match="invalid mail recipient"):
        notifier.send("not-an-address", "s", "t")


def test_notifier_slack_rate_limit_then_success_and_bad_token(slack) -> None:  # type: ignore[no-untyped-def]
    slack.fail_next.append((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    notifier = Notifier(slack_base_url=slack.base_url, slack_token=TOKEN)
    posted = notifier.post_slack("C42", "hello")
    assert posted["channel"] == "C42" and posted["ts"] and slack.calls == 2
    with pytest.raises(NotificationError, match="invalid_auth"):
        Notifier(slack_base_url=slack.base_url, slack_token="xoxb-wrong").post_slack("C42", "x")
    with pytest.raises(NotificationError, match="YARNNN_SLACK_DELIVERY_TOKEN"):
        Notifier(slack_base_url=slack.base_url).post_slack("C42", "x")


def test_alert_channels_are_configurable_and_missing_targets_fail_loudly(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert load_settings().alert_channels == ()
    monkeypatch.setenv("YARNNN_OPERATOR_ALERTS", "email")
    with pytest.raises(SettingsError, match="YARNNN_OPERATOR_EMAIL, YARNNN_SMTP_HOST"):
        load_settings()
    monkeypatch.setenv("YARNNN_OPERATOR_EMAIL", "ops@example.com")
    monkeypatch.setenv("YARNNN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("YARNNN_OPERATOR_SLACK_CHANNEL", "#ops")
    monkeypatch.setenv("YARNNN_SLACK_DELIVERY_TOKEN", TOKEN)
    assert load_settings().alert_channels == ("email",)
    monkeypatch.setenv("YARNNN_OPERATOR_ALERTS", "auto")
    assert load_settings().alert_channels == ("email", "slack")
    monkeypatch.setenv("YARNNN_OPERATOR_ALERTS", "off")
    assert load_settings().alert_channels == ()
    notifier = build_resources(load_settings())["notifier"]
    assert notifier.alert_channels == [] and TOKEN not in json.dumps(notifier.model_dump(), default=str)
