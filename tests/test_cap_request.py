"""`krise cap export`: a CAP 1.2 request for an approved version, valid against the XSD."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import xmlschema

from krise_tui.bus.envelope import Signer
from krise_tui.config import Settings
from krise_tui.core.engine import Accepted, PublishVersion, SaveDraft
from krise_tui.core.messaging import DraftVariant
from krise_tui.runtime import ConsoleRuntime

ROOT = Path(__file__).resolve().parents[1]
KRISE = str(Path(sys.executable).with_name("krise"))
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
WEB = "https://www.eksempel.kommune.no"


async def approve_and_publish(
    runtime: ConsoleRuntime, text: str, *, status: str = "published", supersedes: str | None = None
) -> str:
    saved = await runtime.submit(
        SaveDraft(
            (DraftVariant("nb", "Flomvarsel", text), DraftVariant("en", "Flood warning", text)),
            status=status,
            supersedes=supersedes,
        )
    )
    assert isinstance(saved, Accepted), saved
    approved = await runtime.approve(
        saved.events[0].draft_id,  # type: ignore[attr-defined]
        approver="siri",
        passphrase="passord-siri",
    )
    assert isinstance(approved, Accepted), approved
    version_id: str = approved.events[0].version_id  # type: ignore[attr-defined]
    assert isinstance(await runtime.submit(PublishVersion(version_id)), Accepted)
    return version_id


async def test_cap_export_of_an_alert_and_its_update_validates(
    tmp_path: Path, make_settings: Callable[..., Settings], signer: Signer
) -> None:
    settings = make_settings(
        None,
        org_file=ROOT / "playbooks" / "orgs" / "eksempel.yaml",
        playbook=ROOT / "playbooks" / "flom-og-skred.yaml",
    )
    runtime = ConsoleRuntime(settings, signer=signer, start_bus=False)
    await runtime.start()
    try:
        first = await approve_and_publish(runtime, f"Rv73 er stengt. Se {WEB}")
        second = await approve_and_publish(
            runtime, f"Rv73 er åpnet igjen. Se {WEB}", status="updated", supersedes=first
        )
    finally:
        await runtime.stop()
    xsd = resources.files("krise_tui.exports").joinpath("schemas/CAP-v1.2.xsd")
    schema = xmlschema.XMLSchema(str(xsd))
    env = {"KRISE_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"}
    args = ["--journal", str(settings.journal_path)]
    env |= {"KRISE_ORG_FILE": str(settings.org_file), "KRISE_PLAYBOOK": str(settings.playbook)}
    for version, msg_type in ((first, "Alert"), (second, "Update")):
        out = subprocess.run(
            [KRISE, "cap", "export", *args, "--version", version[:12], "--exercise"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "bare politiet sender Nødvarsel" in out.stderr
        schema.validate(out.stdout)
        root = ET.fromstring(out.stdout)
        assert root.findtext("cap:status", namespaces=NS) == "Exercise"
        assert root.findtext("cap:msgType", namespaces=NS) == msg_type
        sent = root.findtext("cap:sent", namespaces=NS) or ""
        assert not sent.endswith("Z") and sent[-6] in "+-"
        langs = [e.text for e in root.findall("cap:info/cap:language", NS)]
        assert langs == ["nb-NO", "en-US"]
        assert root.findtext("cap:info/cap:area/cap:areaDesc", namespaces=NS)
    refs = root.findtext("cap:references", namespaces=NS) or ""
    assert f"no.kommune.9999.krise.{first[:16]}" in refs
