"""agentflow: a graph engine for AI agents and the server that runs it in production."""

__version__ = "0.1.0"
