"""The suite relies on pytest-xdist's `--dist loadgroup` keeping a group on one worker.

tests/conftest.py marks groups at collection time (the kind tests share one kind cluster; a
module with a module-scoped fixture sets it up once). If a pytest or xdist upgrade makes xdist
ignore the marks, every worker would build its own kind cluster under the same name, so this
checks the pair installed here, the same way tests/conftest.py marks them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "grouped" in item.name:
            item.add_marker(pytest.mark.xdist_group("together"))
"""

TESTS = """
import time

def test_grouped_{n}():
    time.sleep(0.2)

def test_free_{n}():
    time.sleep(0.2)
"""


def test_marks_added_at_collection_keep_a_group_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for n in range(4):
        (tmp_path / f"test_m{n}.py").write_text(TESTS.format(n=n))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "3",
            "--dist",
            "loadgroup",
            "-v",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    ran = re.findall(r"\[(gw\d+)\] \[[ \d]+%\] PASSED \S+::test_grouped_\d", proc.stdout)
    assert len(ran) == 4, proc.stdout[-2000:]
    assert len(set(ran)) == 1, f"the group ran on workers {sorted(set(ran))}"
