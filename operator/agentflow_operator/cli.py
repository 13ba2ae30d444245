"""The ``agentflow-operator`` command: ``run`` the operator, print its ``crd``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import click

from agentflow_operator.crd import crd_yaml


@click.group()
def main() -> None:
    """The agentflow Kubernetes operator."""


@main.command()
def crd() -> None:
    """Print the AgentGraph CustomResourceDefinition (generated from the API models)."""
    click.echo(crd_yaml(), nl=False)


@main.command()
def reference() -> None:
    """Print the AgentGraph reference (Markdown), generated from the API models."""
    from agentflow_operator.reference import reference_markdown

    click.echo(reference_markdown(), nl=False)


@main.command()
@click.option("--verbose", is_flag=True, help="Log kopf's own decisions too.")
def run(verbose: bool) -> None:
    """Run the operator (kopf) until SIGTERM."""
    import kopf

    from agentflow_operator import handlers  # noqa: F401 - registers the handlers
    from agentflow_operator.config import OperatorConfig

    config = OperatorConfig()
    kopf.configure(verbose=verbose, log_prefix=True)
    logging.getLogger("agentflow_operator").setLevel(config.log_level)
    if not verbose:  # not a line per watch event ("Handler 'on_owned' succeeded")
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    namespaces = config.watch_namespaces
    operator = kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces,
        peering_name=config.peering,
        liveness_endpoint=config.liveness_endpoint or None,
    )
    # uvloop (the runtime's dependencies bring it), as kopf's own CLI does: asyncio's
    # pure-Python loop was a tenth of the operator's time under a burst of watch events.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(operator)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on every platform: asyncio's own loop then
        return None
    return uvloop.new_event_loop
