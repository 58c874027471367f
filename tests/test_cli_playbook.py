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


def test_a_playbook_naming_another_municipality_fails_against_the_org(tmp_path: Path) -> None:
    source = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    lines = source.splitlines()
    stale = [
        "  area:",
        "    area_desc: Hattfjelldal kommune",
        "    geocodes:",
        "      - name: kommunenummer",
        '        value: "1826"',
    ]
    playbook = tmp_path / "flom.yaml"
    playbook.write_text("\n".join(lines + stale) + "\n", encoding="utf-8")
    area_line = len(lines) + 1
    out = check(str(playbook), "--org", str(ROOT / "playbooks" / "orgs" / "eksempel.yaml"))
    assert out.returncode == 1
    assert out.stdout.splitlines()[1:] == [
        f"{playbook}:{area_line + 1}:5: cap.area.area_desc: names 'Hattfjelldal kommune', but "
        "the org file is Eksempel kommune (9999): a playbook may only narrow the org file's "
        "area, never name another municipality; describe the part of the municipality only",
        f"{playbook}:{area_line + 4}:9: cap.area.geocodes[0].value: names municipality 1826, "
        "but the org file is Eksempel kommune (9999): a playbook may only narrow the org "
        "file's area, never name another municipality; remove the geocode (the org file's "
        "municipality number is used)",
    ]
    # The same file is right for Hattfjelldal.
    out = check(str(playbook), "--org", str(ROOT / "playbooks" / "orgs" / "hattfjelldal.yaml"))
    assert out.returncode == 0, out.stdout
