"""The agentflow operator: reconciles AgentGraph resources into running graph runtimes."""

__version__ = "0.1.0"
