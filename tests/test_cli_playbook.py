"""`krise playbook check`: the shipped playbooks pass; broken files give file:line:column."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KRISE = str(Path(sys.executable).with_name("krise"))


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KRISE, "playbook", "check", *args], capture_output=True, text=True, check=False
    )


def test_shipped_playbooks_pass_against_both_org_files() -> None:
    playbooks = sorted(str(p) for p in (ROOT / "playbooks").glob("*.yaml"))
    assert len(playbooks) >= 4
    for org in ("hattfjelldal", "eksempel"):
        out = check(*playbooks, "--org", str(ROOT / "playbooks" / "orgs" / f"{org}.yaml"))
        assert out.returncode == 0, out.stdout + out.stderr


def test_a_typo_is_reported_with_its_position(tmp_path: Path) -> None:
    source = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    lines = source.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("deadlines:"))
    lines[index] = "dedlines:"
    broken = tmp_path / "flom.yaml"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = check(str(broken))
    assert out.returncode == 1
    assert f"{broken}:{index + 1}:1:" in out.stdout + out.stderr
