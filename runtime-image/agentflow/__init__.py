"""agentflow: a graph engine for AI agents and the server that runs it in production."""

__version__ = "0.1.0"
# The Pythons the runtime image is published for (ghcr.io/agentflow/runtime:<version>-python<X.Y>,
# .github/workflows/release.yml); the first is also ghcr.io/agentflow/runtime:<version>.
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
