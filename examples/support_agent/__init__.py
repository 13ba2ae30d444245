"""A deterministic customer-support agent: the graph the README serves."""
