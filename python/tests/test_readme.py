"""The README's Python quick-start runs as written (from the repository's root) and prints what
it says it prints."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## From Python"):]
    section = section[: section.index("\n## ", 3)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_quick_start_blocks_run():
    found = blocks()
    assert len(found) == 2
    outputs = []
    for code in found:
        p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        outputs.append(p.stdout.strip())
    assert outputs[0] == "(32, 16, 10, 10) (32, 10) True"
    assert outputs[1] == "(5, 4, 3, 3) (5, 4)"
