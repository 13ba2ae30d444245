"""The ``agentflow`` command: ``api`` serves a graph, ``init`` writes a starter project,
``build`` writes deployment files, ``token`` mints a JWT for local use."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
from importlib import resources
from pathlib import Path
from types import FrameType

import click

from agentflow import PYTHON_VERSIONS
from agentflow.checkpoint import Checkpointer, CheckpointerError, InMemoryCheckpointer
from agentflow.graph import CompiledGraph


@click.group()
@click.version_option(package_name="agentflow")
def main() -> None:
    """Run agent graphs in production."""


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="AGENTFLOW_HOST",
    help="Address to bind.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    envvar="AGENTFLOW_PORT",
    type=click.IntRange(0, 65535),
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    envvar="AGENTFLOW_WORKERS",
    type=click.IntRange(1, 256),
    help="Uvicorn worker processes.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="agentflow.json naming the graph (sets GRAPH_PATH; AGENTFLOW_GRAPH wins over it).",
)
def api(host: str, port: int, workers: int, config_path: Path | None) -> None:
    """Serve the graph over HTTP."""
    import uvicorn

    from agentflow.runtime.app import create_app
    from agentflow.runtime.auth import Authenticator
    from agentflow.runtime.backends import build_checkpointer, graph_id_of
    from agentflow.runtime.loader import GraphLoadError, find_graph_ref, import_target
    from agentflow.runtime.logs import log_config
    from agentflow.runtime.protocol import GuardedHttpProtocol
    from agentflow.runtime.settings import SettingsError, load_settings
    from agentflow.runtime.shutdown import SHUTDOWN_MARGIN_S

    if config_path is not None:
        os.environ["GRAPH_PATH"] = str(config_path)  # inherited by worker processes
    try:
        settings = load_settings()
        ref = find_graph_ref(settings)
        target = import_target(ref)
        if settings.auth_enabled:
            Authenticator(settings)  # a JWT_PUBLIC_KEY that is no key fails here, in one line
        own = target.checkpointer if isinstance(target, CompiledGraph) else None
        if own is None and settings.checkpointer == "postgres":
            # Reach Postgres and migrate once, before any worker starts, to fail in one line.
            asyncio.run(_preflight(build_checkpointer(settings, graph_id_of(settings, ref))))
    except (SettingsError, GraphLoadError, CheckpointerError) as error:
        raise click.ClickException(str(error)) from None
    shared = (
        settings.checkpointer == "postgres"
        if own is None
        else not isinstance(own, InMemoryCheckpointer)
    )
    if workers > 1 and not shared:
        raise click.ClickException(
            f"--workers {workers} needs a checkpointer shared between processes: the in-memory "
            "one keeps threads inside one process, so a thread's next request could reach a "
            "worker that has never seen it. Set CHECKPOINTER=postgres with DATABASE_URL (and "
            "REDIS_URL), or run --workers 1 and scale with replicas."
        )
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every worker writes its metrics there; /metrics on any of them sums them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="agentflow-metrics-")
    # Uvicorn drains on SIGTERM, then restores the previous handler and raises the signal again
    # so the exit status tells of it: with this handler, a drained server exits 0.
    signal.signal(signal.SIGTERM, _exit_after_drain)
    # One worker serves the app built here; several each build their own from the env.
    app = (
        create_app(settings, owns_process=True)
        if workers == 1
        else "agentflow.runtime.app:create_app_from_env"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=workers > 1,
        log_config=log_config(settings.log_level, json_lines=settings.is_production),
        server_header=False,
        http=GuardedHttpProtocol,  # head deadlines and a connection cap (protocol.py)
        # Open streams get the grace period (then their runs are stopped) and a margin.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + SHUTDOWN_MARGIN_S,
    )


def _exit_after_drain(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


async def _preflight(checkpointer: Checkpointer) -> None:
    await checkpointer.setup()
    await checkpointer.close()


@main.command()
@click.option(
    "--docker-compose",
    "docker_compose",
    is_flag=True,
    help="Write a Dockerfile and docker-compose.yml.",
)
@click.option("--k8s", is_flag=True, help="Write an AgentGraph manifest (agentgraph.yaml).")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project folder: its agentflow.json names the graph, the files go there.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--python-version",
    default="3.11",
    show_default=True,
    type=click.Choice(PYTHON_VERSIONS),
)
def build(
    docker_compose: bool,
    k8s: bool,
    output: Path,
    force: bool,
    workers: int,
    port: int,
    python_version: str,
) -> None:
    """Write deployment files for the project's graph."""
    from agentflow import build as templates
    from agentflow.runtime.loader import GraphLoadError, find_graph_ref
    from agentflow.runtime.settings import SettingsError, load_settings

    if not (docker_compose or k8s):
        raise click.UsageError("say what to build: --docker-compose and/or --k8s")
    if not os.environ.get("AGENTFLOW_GRAPH") and not os.environ.get("GRAPH_PATH"):
        os.environ["GRAPH_PATH"] = str(output / "agentflow.json")
    try:
        ref = find_graph_ref(load_settings())
    except (SettingsError, GraphLoadError) as error:
        raise click.ClickException(str(error)) from None
    project = templates.Project(
        name=templates.dns_label(output.resolve().name),
        graph=str(ref),
        workers=workers,
        port=port,
        python_version=python_version,
    )
    files: dict[str, str] = {}
    if docker_compose:
        files["Dockerfile"] = templates.dockerfile(project)
        files["docker-compose.yml"] = templates.compose(project)
    if k8s:
        files["agentgraph.yaml"] = templates.agentgraph(project)
    _write_all(output, files, force)


def _write_all(directory: Path, files: dict[str, str], force: bool) -> None:
    """Write every file or none: existing files are only replaced with --force."""
    existing = [str(directory / name) for name in files if (directory / name).exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise click.ClickException(
            f"{', '.join(existing)} {verb} already; pass --force to overwrite"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
        click.echo(f"wrote {directory / name}")


STARTER_FILES = {"graph.py": "graph.py", "agentflow.json": "agentflow.json"}


@main.command()
@click.option(
    "--sub",
    "subject",
    default="dev",
    show_default=True,
    help="The subject: whose threads the token's requests see and create.",
)
@click.option(
    "--ttl",
    "ttl_s",
    default=3600,
    show_default=True,
    type=click.IntRange(1, 30 * 24 * 3600),
    help="Seconds until it expires.",
)
@click.option(
    "--claim",
    "claims",
    multiple=True,
    metavar="NAME=VALUE",
    help="An extra claim (repeatable); VALUE is read as JSON when it is JSON, else as text.",
)
@click.option(
    "--private-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key, when JWT_ALGORITHM is RS*/ES* (the server has the public key).",
)
def token(subject: str, ttl_s: int, claims: tuple[str, ...], private_key: Path | None) -> None:
    """Print a JWT the server accepts, made from the same settings (JWT_SECRET_KEY,
    JWT_ALGORITHM, JWT_ISSUER, JWT_AUDIENCE): for curl and local clients. Production clients
    get their tokens from your identity provider."""
    from agentflow.runtime.auth import RESERVED_CLAIMS, mint_token
    from agentflow.runtime.settings import SettingsError, load_settings

    extra = {}
    for claim in claims:
        name, equals, value = claim.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{claim!r} is not NAME=VALUE", param_hint="--claim")
        if name in RESERVED_CLAIMS:
            raise click.BadParameter(
                f"{name} is set from --sub, --ttl and the settings", param_hint="--claim"
            )
        try:
            extra[name] = json.loads(value)
        except ValueError:
            extra[name] = value
    try:
        key = None if private_key is None else private_key.read_text()
        click.echo(mint_token(load_settings(), subject, ttl_s, extra, key))
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Write a runnable starter project (graph.py and agentflow.json) into DIRECTORY."""
    templates = resources.files("agentflow") / "templates"
    files = {name: (templates / template).read_text() for name, template in STARTER_FILES.items()}
    _write_all(directory, files, force)
    click.echo(f"next: cd {directory} && agentflow api")
