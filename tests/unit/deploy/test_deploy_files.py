"""The deploy files (deploy/Dockerfile, deploy/docker-compose.yml, deploy/k8s/*.yaml) name only
what exists: every command, subcommand and option is parsed by the real ``runstream`` CLI (click),
every RUNSTREAM_* variable is one the settings know, the port a worker serves is resolved by the
real settings from its options and environment and is the one its probes, health checks and
scrape annotations use, the paths are the ones the workers serve, and the Dockerfile's entrypoint
and COPY sources exist. No Docker and no cluster: the files are parsed (PyYAML).

Each check is shown to catch a broken file (the ``test_catches_*`` tests)."""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from runstream.apps.cli import main
from runstream.core.errors import ConfigError
from runstream.core.observability import HEALTH_PATH, METRICS_PATH, PATHS, READY_PATH
from runstream.core.settings import Settings, is_known_variable
from runstream.ui.metrics import UiMetrics

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
COMPOSE = REPO / "deploy" / "docker-compose.yml"
K8S = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
WORKERS = frozenset({"processor", "compactor", "ui"})
SECRET = "<from a secret>"
_VARIABLE = re.compile(r"RUNSTREAM_[A-Z0-9_]+(?![<*A-Za-z0-9_])")
_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/]*)")


# --- what the repository says ---------------------------------------------------------------


def script_names() -> set[str]:
    """The console scripts the root distribution installs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def ui_paths() -> set[str]:
    """The probe and metrics paths the UI app serves."""
    return {route.path for route in UiMetrics().routes()}


def parse_command(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """The subcommand and its parsed parameters, as ``runstream`` would parse ``argv``.

    Raises:
        click.ClickException: not the runstream command, no such subcommand or option, a bad
            value.
    """
    if not argv or argv[0] not in script_names():
        raise click.UsageError(f"runs {argv[:1]}, not one of the scripts {sorted(script_names())}")
    args = argv[1:]
    if not args:
        raise click.UsageError("names no subcommand")
    context = click.Context(main, info_name=argv[0])
    command = main.get_command(context, args[0])
    if command is None:
        raise click.UsageError(f"no such subcommand {args[0]!r}")
    sub = command.make_context(args[0], list(args[1:]), parent=context)
    return args[0], dict(sub.params)


# --- the Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of every instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def image_entrypoint(text: str) -> list[str]:
    entry = [
        json.loads(rest) for word, rest in dockerfile_instructions(text) if word == "ENTRYPOINT"
    ]
    return entry[-1] if entry else []


def image_env(text: str) -> dict[str, str]:
    """The ENV of the final stage."""
    env: dict[str, str] = {}
    for word, rest in dockerfile_instructions(text):
        if word == "FROM":
            env = {}
        elif word == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def dockerfile_problems(text: str, context: Path = REPO) -> list[str]:
    problems = []
    entry = image_entrypoint(text)
    if entry[:1] != ["runstream"] or entry[0] not in script_names():
        problems.append(f"Dockerfile: ENTRYPOINT {entry} is not the runstream script")
    for word, rest in dockerfile_instructions(text):
        if word != "COPY" or "--from=" in rest:
            continue
        *sources, _ = shlex.split(rest)
        for source in sources:
            if not (context / source).exists():
                problems.append(f"Dockerfile: COPY source {source!r} does not exist")
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = {
        source.rstrip("/")
        for word, rest in dockerfile_instructions(text)
        if word == "COPY" and "--from=" not in rest
        for source in shlex.split(rest)[:-1]
    }
    problems += [f"Dockerfile: COPY source {s!r} is in .dockerignore" for s in copied & ignored]
    problems += variable_problems("Dockerfile ENV", image_env(text))
    # the final stage keeps only the virtual environment: nothing may point back into /src
    installs = [rest for word, rest in dockerfile_instructions(text) if "uv pip install" in rest]
    if not installs or not all("--no-editable" in rest for rest in installs):
        problems.append("Dockerfile: uv pip install without --no-editable (workspace members)")
    return problems


# --- one worker as deployed -----------------------------------------------------------------


def variable_problems(where: str, names: Mapping[str, object] | list[str]) -> list[str]:
    return [
        f"{where}: {name} is not a variable Runstream reads"
        for name in names
        if name.startswith("RUNSTREAM_") and not is_known_variable(name)
    ]


def served(where: str, argv: list[str], env: Mapping[str, str]) -> tuple[str, int, set[str]]:
    """The worker's subcommand, the port it serves its health and metrics on, and the paths
    there, as the real CLI and settings resolve them.

    Raises:
        AssertionError: the command, its options or its settings are wrong (the message says
            which), or it is not a worker, or it listens on loopback only.
    """
    try:
        name, params = parse_command(argv)
    except click.ClickException as error:
        raise AssertionError(f"{where}: {argv}: {error.format_message()}") from error
    assert name in WORKERS, f"{where}: {name!r} is not a long-running worker"
    if name == "ui":
        host, port, paths = params["host"], params["port"], ui_paths()
    else:
        try:
            settings = Settings.resolve(
                metrics_port=params["metrics_port"],
                metrics_host=params["metrics_host"],
                environ={k: v for k, v in env.items() if v != SECRET},
            )
        except ConfigError as error:
            raise AssertionError(f"{where}: {error}") from error
        assert settings.metrics_port is not None, (
            f"{where}: serves no metrics: set --metrics-port or RUNSTREAM_METRICS_PORT"
        )
        host, port, paths = settings.metrics_host, settings.metrics_port, set(PATHS)
    assert host in ("0.0.0.0", "::"), f"{where}: listens on {host}, unreachable for probes"
    return name, port, paths


def check_probe(where: str, kind: str, path: str, port: int, serves: tuple[int, set[str]]) -> None:
    served_port, paths = serves
    assert port == served_port, f"{where}: {kind} on port {port}, the worker serves {served_port}"
    assert path in paths, f"{where}: {kind} on {path}, the worker serves {sorted(paths)}"


# --- Kubernetes -----------------------------------------------------------------------------


def k8s_problems(docs: list[dict[str, Any]], base_env: Mapping[str, str]) -> list[str]:
    """Every problem of the manifests, as messages (empty: none)."""
    problems: list[str] = []
    config_maps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"
    }
    for name, data in config_maps.items():
        problems += variable_problems(f"ConfigMap {name}", data)
    deployed: dict[str, dict[str, Any]] = {}
    for doc in (d for d in docs if d.get("kind") == "Deployment"):
        pod = doc["spec"]["template"]
        for container in pod["spec"]["containers"]:
            where = f"Deployment {doc['metadata']['name']}/{container['name']}"
            try:
                worker = _k8s_container(where, pod, container, config_maps, base_env)
            except AssertionError as error:
                problems.append(str(error))
                continue
            deployed[worker] = {"pod": pod, "container": container}
    missing = WORKERS - set(deployed)
    if missing:
        problems.append(f"k8s: no Deployment runs {sorted(missing)}")
    for service in (d for d in docs if d.get("kind") == "Service"):
        selector = service["spec"]["selector"]
        targets = [
            w
            for w in deployed.values()
            if all(w["pod"]["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ]
        if not targets:
            problems.append(f"Service {service['metadata']['name']}: selects no worker")
        for target in targets:
            names = {p.get("name") for p in target["container"].get("ports", [])}
            numbers = {p["containerPort"] for p in target["container"].get("ports", [])}
            for port in service["spec"]["ports"]:
                if port["targetPort"] not in names | numbers:
                    problems.append(
                        f"Service {service['metadata']['name']}: targetPort "
                        f"{port['targetPort']} is no port of the container"
                    )
    if "ui" in deployed and not any(d.get("kind") == "Service" for d in docs):
        problems.append("k8s: no Service for the UI")
    return problems


def _k8s_container(
    where: str,
    pod: dict[str, Any],
    container: dict[str, Any],
    config_maps: Mapping[str, Mapping[str, str]],
    base_env: Mapping[str, str],
) -> str:
    env = dict(base_env)
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            assert ref in config_maps, f"{where}: envFrom names no ConfigMap {ref!r}"
            env.update(config_maps[ref])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", SECRET)
    problems = variable_problems(where, env)
    assert not problems, "; ".join(problems)
    argv = [*container.get("command", image_entrypoint(DOCKERFILE.read_text())), *container["args"]]
    if argv[0] == "mlflow":
        port = mlflow_server_port(where, [str(a) for a in argv])
        probe = container.get("readinessProbe", {}).get("httpGet", {})
        assert probe.get("port") == port, f"{where}: probes port {probe.get('port')}, not {port}"
        return "mlflow"
    worker, port, paths = served(where, [str(a) for a in argv], env)
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in ports.values(), f"{where}: serves port {port}, not among its ports {ports}"
    for kind, path in (("livenessProbe", HEALTH_PATH), ("readinessProbe", READY_PATH)):
        probe = container.get(kind)
        assert probe is not None, f"{where}: no {kind}"
        get = probe["httpGet"]
        number = ports.get(get["port"], get["port"])
        assert get["path"] == path, f"{where}: {kind} on {get['path']}, use {path}"
        check_probe(where, kind, get["path"], int(number), (port, paths))
    annotations = pod["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true", f"{where}: not scraped"
    check_probe(
        where,
        "prometheus.io scrape",
        annotations.get("prometheus.io/path", METRICS_PATH),
        int(annotations["prometheus.io/port"]),
        (port, paths),
    )
    resources = container.get("resources", {})
    assert resources.get("requests") and resources.get("limits"), f"{where}: no resources"
    return worker


def mlflow_server_port(where: str, argv: list[str]) -> int:
    """The port of an ``mlflow server`` command, parsed by MLflow's own CLI, whose backend
    store URI is a scheme Runstream's plugin registers.

    Raises:
        AssertionError, click.ClickException: not ``mlflow server``, an unknown option, or a
            backend store no plugin serves.
    """
    from importlib.metadata import entry_points

    from mlflow.cli import cli

    assert argv[:2] == ["mlflow", "server"], f"{where}: {argv[:2]} is not mlflow server"
    server = cli.get_command(click.Context(cli), "server")
    assert server is not None
    params = server.make_context("server", argv[2:]).params
    scheme = str(params["backend_store_uri"]).split("://", 1)[0]
    served = {e.name for e in entry_points(group="mlflow.tracking_store")}
    assert scheme in served, f"{where}: no plugin serves {scheme!r} (only {sorted(served)})"
    return int(params["port"])


# --- compose --------------------------------------------------------------------------------


def compose_problems(compose: dict[str, Any], base_env: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    workers = set()
    for name, service in compose["services"].items():
        if "build" not in service and not str(service.get("image", "")).startswith("runstream"):
            continue
        where = f"compose service {name}"
        build = service.get("build")
        if build is not None:
            context = (COMPOSE.parent / build["context"]).resolve()
            if not (context / build["dockerfile"]).exists():
                problems.append(f"{where}: no Dockerfile {build['dockerfile']} in {context}")
        env = {**base_env, **{k: str(v) for k, v in service.get("environment", {}).items()}}
        problems += variable_problems(where, env)
        entrypoint = service.get("entrypoint") or image_entrypoint(DOCKERFILE.read_text())
        argv = [*map(str, entrypoint), *map(str, service["command"])]
        if argv[0] == "mlflow":
            try:
                mlflow_server_port(where, argv)
            except (AssertionError, click.ClickException) as error:
                problems.append(f"{where}: {error}")
            continue
        try:
            worker, port, paths = served(where, argv, env)
            test = " ".join(service["healthcheck"]["test"])
            match = _URL.search(test)
            assert match, f"{where}: the health check calls no local URL: {test}"
            check_probe(where, "healthcheck", match[2], int(match[1]), (port, paths))
            assert match[2] == HEALTH_PATH, f"{where}: healthcheck on {match[2]}, use {HEALTH_PATH}"
            published = {int(str(p).rsplit(":", 1)[1]) for p in service.get("ports", [])}
            assert port in published, f"{where}: port {port} is not published ({published})"
            workers.add(worker)
        except AssertionError as error:
            problems.append(str(error))
    if WORKERS - workers:
        problems.append(f"compose: no service runs {sorted(WORKERS - workers)}")
    if "kafka" not in compose["services"] or "s3" not in compose["services"]:
        problems.append("compose: Kafka and S3 must be services too")
    return problems


# --- the files as they are ------------------------------------------------------------------


def load_k8s() -> list[dict[str, Any]]:
    return [doc for path in K8S for doc in yaml.safe_load_all(path.read_text()) if doc]


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture
def base_env() -> dict[str, str]:
    return image_env(DOCKERFILE.read_text())


def test_dockerfile_entrypoint_and_copy_sources_exist() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_kubernetes_manifests_name_real_commands_variables_probes_and_ports(
    base_env: dict[str, str],
) -> None:
    assert K8S, "no manifests in deploy/k8s"
    assert k8s_problems(load_k8s(), base_env) == []


def test_compose_file_names_real_commands_variables_and_health_checks(
    base_env: dict[str, str],
) -> None:
    assert compose_problems(load_compose(), base_env) == []


def test_every_variable_written_in_the_deploy_files_is_known() -> None:
    """Comments included: a commented-out example must work once uncommented."""
    for path in [DOCKERFILE, COMPOSE, *K8S]:
        names = sorted(set(_VARIABLE.findall(path.read_text())))
        assert names, f"{path.name} names no RUNSTREAM_* variable"
        assert variable_problems(path.name, names) == []


def test_probe_paths_are_served_by_every_worker() -> None:
    assert {HEALTH_PATH, READY_PATH, METRICS_PATH} <= ui_paths()
    assert {HEALTH_PATH, READY_PATH, METRICS_PATH} <= set(PATHS)


# --- and each check catches a broken file ---------------------------------------------------


def _container(docs: list[dict[str, Any]], worker: str) -> dict[str, Any]:
    for doc in docs:
        if doc.get("kind") == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container["args"][0] == worker:
                    return container  # type: ignore[no-any-return]
    raise AssertionError(worker)


@pytest.mark.parametrize(
    ("worker", "args", "expected"),
    [
        ("processor", ["runstream", "processor"], "no such subcommand 'runstream'"),
        ("compactor", ["compactor", "--rotate-intervall", "30"], "No such option"),
        ("compactor", ["compactor", "--rotate-interval", "soon"], "not a valid float"),
        ("ui", ["ui", "--port", "5055"], "listens on 127.0.0.1"),
        ("processor", ["replay"], "not a long-running worker"),
    ],
)
def test_catches_a_wrong_command_or_option(
    base_env: dict[str, str], worker: str, args: list[str], expected: str
) -> None:
    docs = copy.deepcopy(load_k8s())
    _container(docs, worker)["args"] = args
    problems = k8s_problems(docs, base_env)
    assert any(expected in problem for problem in problems), problems


def test_catches_a_probe_on_the_wrong_port_or_path(base_env: dict[str, str]) -> None:
    docs = copy.deepcopy(load_k8s())
    _container(docs, "processor")["readinessProbe"]["httpGet"]["port"] = 9200
    _container(docs, "compactor")["livenessProbe"]["httpGet"]["path"] = "/health"
    problems = k8s_problems(docs, base_env)
    assert any("readinessProbe on port 9200, the worker serves 9100" in p for p in problems)
    assert any("livenessProbe on /health" in p for p in problems)


def test_catches_an_unknown_variable(base_env: dict[str, str]) -> None:
    docs = copy.deepcopy(load_k8s())
    config = next(d for d in docs if d.get("kind") == "ConfigMap")
    config["data"]["RUNSTREAM_TRACKIN_URI"] = "kafka://k:9092"
    problems = k8s_problems(docs, base_env)
    assert any("RUNSTREAM_TRACKIN_URI is not a variable" in p for p in problems), problems


def test_catches_a_worker_serving_no_metrics(base_env: dict[str, str]) -> None:
    docs = copy.deepcopy(load_k8s())
    del next(d for d in docs if d.get("kind") == "ConfigMap")["data"]["RUNSTREAM_METRICS_PORT"]
    problems = k8s_problems(docs, {k: v for k, v in base_env.items() if "PORT" not in k})
    assert sum("serves no metrics" in p for p in problems) == 2, problems  # processor, compactor


def test_catches_a_bad_port_value(base_env: dict[str, str]) -> None:
    docs = copy.deepcopy(load_k8s())
    next(d for d in docs if d.get("kind") == "ConfigMap")["data"]["RUNSTREAM_METRICS_PORT"] = "x"
    assert any(
        "RUNSTREAM_METRICS_PORT='x' is not a port" in p for p in k8s_problems(docs, base_env)
    )


def test_catches_a_wrong_compose_service(base_env: dict[str, str]) -> None:
    compose = copy.deepcopy(load_compose())
    compose["services"]["compactor"]["command"] = ["compactor", "--no-such-option"]
    compose["services"]["ui"]["healthcheck"]["test"][-1] = "urlopen('http://127.0.0.1:5055/ok')"
    compose["services"]["processor"]["ports"] = []
    compose["services"]["processor"]["environment"] = {
        **compose["services"]["processor"]["environment"],
        "RUNSTREAM_STOR": "s3://x",
    }
    problems = compose_problems(compose, base_env)
    assert any("compactor" in p and "No such option" in p for p in problems), problems
    assert any("healthcheck on /ok" in p for p in problems), problems
    assert any("port 9100 is not published" in p for p in problems), problems
    assert any("RUNSTREAM_STOR is not a variable" in p for p in problems), problems


def test_catches_a_wrong_mlflow_server(base_env: dict[str, str]) -> None:
    compose = copy.deepcopy(load_compose())
    compose["services"]["mlflow"]["command"] = ["server", "--no-such-option"]
    assert any("mlflow" in p and "No such option" in p for p in compose_problems(compose, base_env))
    compose["services"]["mlflow"]["command"] = ["server", "--backend-store-uri", "nosuch://x"]
    problems = compose_problems(compose, base_env)
    assert any("no plugin serves 'nosuch'" in p for p in problems), problems


def test_catches_a_wrong_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    broken = text.replace('ENTRYPOINT ["runstream"]', 'ENTRYPOINT ["runstrem"]').replace(
        "COPY query query", "COPY queries queries"
    )
    problems = dockerfile_problems(broken)
    assert any("ENTRYPOINT ['runstrem']" in p for p in problems), problems
    assert any("COPY source 'queries' does not exist" in p for p in problems), problems
    ignored = text.replace("COPY query query", "COPY docs docs")
    assert any("'docs' is in .dockerignore" in p for p in dockerfile_problems(ignored))
    editable = text.replace("--no-editable ", "")
    assert any("without --no-editable" in p for p in dockerfile_problems(editable))
