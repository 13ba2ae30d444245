"""The ``agentflow-operator`` command: ``run`` the operator, print its ``crd``."""

from __future__ import annotations

import click

from agentflow_operator.crd import crd_yaml


@click.group()
def main() -> None:
    """The agentflow Kubernetes operator."""


@main.command()
def crd() -> None:
    """Print the AgentGraph CustomResourceDefinition (generated from the API models)."""
    click.echo(crd_yaml(), nl=False)
