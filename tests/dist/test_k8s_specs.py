"""Kubernetes without a cluster: the run and step pod specs that dagster-k8s would submit, built
by dagster-k8s itself from deploy/k8s/values.yaml and the project's executor settings.

The code server's env in the Helm values is loaded as settings (YARNNN_EXECUTOR=k8s), the
definitions' executor config goes through ``k8s_job_executor``'s own config schema and container
context, and ``construct_dagster_k8s_job`` builds the Job: image, env from the Secret, resources.
"""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from dagster._config import process_config
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

from resources.settings import load_settings
from yarn_assets.core.executors import K8S_STEP_RESOURCES, k8s_executor_config

REPO = Path(__file__).resolve().parents[2]
VALUES = yaml.safe_load((REPO / "deploy" / "k8s" / "values.yaml").read_text())
SECRET = "yarnnn-secrets"


@pytest.fixture
def code_server_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The user-code deployment's env from the values, set as the code server would see it."""
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _container(job):  # type: ignore[no-untyped-def]
    [container] = job.spec.template.spec.containers
    return container


def _secret_refs(container) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.secret_ref.name for e in container.env_from or [] if e.secret_ref is not None]


def test_user_code_deployment_values() -> None:
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["YARNNN_EXECUTOR"] == "k8s" and env["YARNNN_K8S_IMAGE"] == image  # steps run the code server's image
    assert deployment["envSecrets"] == [{"name": SECRET}]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["--module-name", "yarn_assets.definitions"]
    assert set(deployment["resources"]) == {"requests", "limits"}
    secretish = ("PASSWORD", "API_KEY", "ENCRYPTION_KEY", "SECRET", "TOKEN", "CONTROL_PLANE_URL")
    assert not [n for n in env if any(s in n for s in secretish) and n != "YARNNN_K8S_ENV_SECRETS"]  # via the Secret
    launcher = VALUES["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": SECRET}]
    assert VALUES["dagsterDaemon"]["runMonitoring"]["enabled"] and VALUES["dagsterDaemon"]["runRetries"]["enabled"]
    assert VALUES["postgresql"]["enabled"] is False and VALUES["global"]["postgresqlSecretName"] == SECRET


def test_step_job_built_from_the_projects_executor_config(code_server_env: dict[str, str]) -> None:
    from yarn_assets.definitions import build_definitions

    settings = load_settings()
    defs = build_definitions(settings)
    assert defs.resolve_job_def("signals_job").executor_def.name == "k8s"
    processed = process_config(k8s_job_executor.config_schema.config_type, k8s_executor_config(settings))
    assert processed.success, processed.errors
    cfg = processed.value
    # what k8s_job_executor's init does with its config (dagster_k8s/executor.py)
    context = K8sContainerContext(
        image_pull_policy=cfg.get("image_pull_policy"), env_secrets=cfg.get("env_secrets"),
        env_vars=cfg.get("env_vars"), labels=cfg.get("labels"), namespace=cfg.get("job_namespace"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(cfg.get("step_k8s_config", {})))
    # the run launcher contributes only where the instance lives (what the Helm chart configures)
    launcher = SimpleNamespace(job_image=None, dagster_home="/opt/dagster/dagster_home",
                               instance_config_map="yarnnn-dagster-instance", postgres_password_secret=SECRET)
    job_config = context.get_k8s_job_config(cfg["job_image"], launcher)
    job = construct_dagster_k8s_job(
        job_config, args=["dagster", "api", "execute_step"], job_name="dagster-step-abc", pod_name="dagster-step-abc",
        component="step_worker", user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": "signals_job", "dagster/op": "signal_passes"})
    container = _container(job)
    assert container.image == code_server_env["YARNNN_K8S_IMAGE"]
    assert _secret_refs(container) == [SECRET]
    assert container.resources.requests == K8S_STEP_RESOURCES["requests"]
    assert container.resources.limits == K8S_STEP_RESOURCES["limits"]
    env = {e.name: e.value for e in container.env}
    assert env["YARNNN_EXECUTOR"] == "k8s"
    assert job.metadata.labels["app.kubernetes.io/component"] == "step_worker"
    assert context.namespace == "yarnnn" and cfg["load_incluster_config"] is True
    assert cfg["retries"] == {"enabled": {}} and cfg["max_concurrent"] == settings.executor_max_concurrent


def test_run_job_built_from_the_helm_run_launcher_values() -> None:
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    resources = launcher["runK8sConfig"]["containerConfig"]["resources"]
    job_config = DagsterK8sJobConfig(
        job_image=image, dagster_home="/opt/dagster/dagster_home", image_pull_policy=launcher["imagePullPolicy"],
        instance_config_map="yarnnn-dagster-instance", env_secrets=[s["name"] for s in launcher["envSecrets"]])
    job = construct_dagster_k8s_job(
        job_config, args=["dagster", "api", "execute_run"], job_name="dagster-run-abc", pod_name="dagster-run-abc",
        component="run_worker",
        user_defined_k8s_config=UserDefinedDagsterK8sConfig(container_config={"resources": resources}))
    container = _container(job)
    assert container.image == image and container.image_pull_policy == "IfNotPresent"
    assert _secret_refs(container) == [SECRET]
    assert container.resources.requests == resources["requests"] and container.resources.limits == resources["limits"]


def test_k8s_executor_needs_an_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARNNN_EXECUTOR", "k8s")
    with pytest.raises(Exception, match="YARNNN_K8S_IMAGE"):
        load_settings()
