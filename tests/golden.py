"""Golden files: rendered output compared with a committed file; UPDATE_GOLDEN=1 rewrites."""

import os
from pathlib import Path


def assert_golden(path: Path, rendered: str) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"no golden file {path.name}: run the test with UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), (
        f"{path.name} changed: review the diff, then UPDATE_GOLDEN=1"
    )
