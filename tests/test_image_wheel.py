"""The image's first stage (Dockerfile, `AS wheel`) builds the hubspot-ledger wheel from the
files it copies, and only from those (issue 15 item 8). Builds a wheel: integration tier."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_compose import _dockerfile_instructions

from hubspot_ledger.config import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_the_wheel_stage_builds_from_the_files_it_copies(tmp_path: Path) -> None:
    """What the first stage copies is enough to build the wheel (a `readme` or a file outside
    plugins/ named in pyproject.toml would break the image's build, not the checkout's)."""
    instructions = _dockerfile_instructions()
    froms = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    wheel_stage = instructions[froms[0]:froms[1]]
    assert wheel_stage[0][1].endswith(" AS wheel")
    copies = [args.split()[-2:] for op, args in wheel_stage if op == "COPY"]
    build = next(args for op, args in wheel_stage if op == "RUN" and "pip wheel" in args)
    source_dir = Path(build.split()[-1])  # pip wheel … <the folder built>
    assert copies
    for source, target in copies:
        destination = tmp_path / "context" / Path(target).relative_to(source_dir)
        if (PROJECT_ROOT / source).is_dir():
            shutil.copytree(PROJECT_ROOT / source, destination,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_ROOT / source, destination)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                    str(tmp_path / "dist"), str(tmp_path / "context")],
                   check=True, capture_output=True, timeout=300)
    [built] = (tmp_path / "dist").glob("hubspot_ledger-*.whl")
    with zipfile.ZipFile(built) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "hubspot-ledger = hubspot_ledger.cli:main" in wheel.read(entry_points).decode()
    assert any(n.startswith("hubspot_ledger/data/migrations/") for n in names)
    assert not any(n.startswith(("hubspot_ledger_tools/", "tests/")) for n in names)
