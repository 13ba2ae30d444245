"""The cluster box: a local simulation of Kubernetes for trying the operator without a cluster
(``python -m devbox``), and what the end-to-end tests in tests/cluster run on.

It builds on the API emulator of the tests (tests/kube) and runs real runtime processes; see
box.py for what it simulates and what it does not.
"""
