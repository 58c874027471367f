"""Broadcast benchmark: one approved version to 8 channels whose endpoints answer in 100 ms.

Run as ``python bench/broadcast.py`` (bounded: every wait has a deadline; ~10 s). A
private mosquitto, the console runtime with its in-process bridges, and a local HTTP
server that answers every request after 100 ms (7 webhook channels + the website's CMS
notification). Prints, baselines measured in the same run:

- ``broadcast_vs_slowest_single``: seconds from the publish command until all 8 channels
  report delivered (median of 3 rounds), against the same pipeline publishing to each
  channel alone, the slowest of them (target ratio ≤ 1.2: the channels do not wait for
  each other).
- ``broadcast_vs_sequential``: the same against delivering to the 8 endpoints one after
  another with the same adapters (no bus): the gain from doing them at once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from krise_tui.core.messaging import DraftVariant

from krise_tui.bus.broker import MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.channels.base import ApprovedMessage
from krise_tui.channels.from_org import channel_from_def
from krise_tui.config import BrokerSettings, Settings
from krise_tui.core.engine import Accepted, PublishVersion, SaveDraft
from krise_tui.core.state import DeliveryStatus
from krise_tui.playbook.loader import load_org
from krise_tui.playbook.models import hash_passphrase
from krise_tui.runtime import ConsoleRuntime

ROOT = Path(__file__).resolve().parents[1]
DELAY = 0.100
WEBHOOKS = 7
WEB = "https://www.bench.kommune.no"


class SlowHandler(BaseHTTPRequestHandler):
    """Answers every POST after DELAY seconds, like a busy platform."""

    counter = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(DELAY)
        with self.lock:
            SlowHandler.counter += 1
            body = json.dumps({"id": f"post-{SlowHandler.counter}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def write_files(directory: Path, url: str) -> tuple[Path, Path]:
    hooks = "\n".join(
        f"  - {{id: kanal{i}, kind: webhook, endpoint: {url}/hook{i}}}"
        for i in range(1, WEBHOOKS + 1)
    )
    org = directory / "org.yaml"
    org.write_text(
        f"""
name: Bench kommune
slug: bench
municipality_number: "9997"
website: {WEB}
required_languages: [nb]
operators:
  - {{id: ola, full_name: Ola Hansen, title: informasjonsmedarbeider,
      role: informasjonsmedarbeider, passphrase_hash: "{hash_passphrase("o")}"}}
  - {{id: kari, full_name: Kari Nordmann, title: kriseleder, role: kriseleder,
      passphrase_hash: "{hash_passphrase("k")}"}}
channels:
  - {{id: nettside, kind: website, endpoint: {url}/cms,
      options: {{directory: {directory / "www"}}}}}
{hooks}
""",
        encoding="utf-8",
    )
    channel_ids = ", ".join(["nettside", *(f"kanal{i}" for i in range(1, WEBHOOKS + 1))])
    source = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    playbook = directory / "playbook.yaml"
    playbook.write_text(
        source.replace(
            "channels: [nettside, facebook, sms, epost, ansatte]", f"channels: [{channel_ids}]"
        ).replace("on_activation: true", "on_activation: false"),
        encoding="utf-8",
    )
    return org, playbook


async def publish_and_wait(runtime: ConsoleRuntime, text: str, channels: tuple[str, ...]) -> float:
    saved = await runtime.submit(
        SaveDraft((DraftVariant("nb", "Benchmark", f"{text} {WEB}"),), channels=channels)
    )
    assert isinstance(saved, Accepted), saved
    approved = await runtime.approve(
        saved.events[0].draft_id,  # type: ignore[attr-defined]
        approver="kari",
        passphrase="k",
    )
    assert isinstance(approved, Accepted), approved
    version_id = approved.events[0].version_id  # type: ignore[attr-defined]
    start = time.perf_counter()
    assert isinstance(await runtime.submit(PublishVersion(version_id)), Accepted)
    deadline = start + 60
    while True:
        ledger = runtime.state.ledger(version_id)
        if ledger and all(d.status is DeliveryStatus.DELIVERED for d in ledger):
            return time.perf_counter() - start
        failed = [d for d in ledger if d.status is DeliveryStatus.FAILED]
        if failed or time.perf_counter() > deadline:
            raise RuntimeError(f"not delivered: {[(d.channel, d.reason) for d in ledger]}")
        await asyncio.sleep(0.002)


async def sequential(org_path: Path, directory: Path) -> float:
    """The same 8 deliveries, one after another, straight through the adapters."""
    org = load_org(org_path)
    adapters = [
        channel_from_def(c, state_dir=directory / "seq", website_url=WEB, base_dir=directory)
        for c in org.channels
    ]
    message = ApprovedMessage.model_validate(
        {
            "version_id": "a" * 64,
            "org_name": org.name,
            "website_url": WEB,
            "variants": [{"lang": "nb", "headline": "Benchmark", "body": f"Sekvensielt {WEB}"}],
            "signature": "Ola Hansen, informasjonsmedarbeider",
            "published_at": datetime.now(UTC).isoformat(),
        }
    )
    start = time.perf_counter()
    for adapter in adapters:
        result = await adapter.deliver(message, idempotency_key=f"{'a' * 64}:{adapter.name}")
        assert result.ok, result.reason
    return time.perf_counter() - start


def line(name: str, measured: float, baseline: float) -> None:
    print(
        f"{name}: measured={measured:.4g} s baseline={baseline:.4g} s "
        f"ratio={measured / baseline:.3f}",
        flush=True,
    )


async def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    directory = Path(tempfile.mkdtemp(prefix="krise-bench-broadcast-"))
    broker = MosquittoBroker(directory / "mosquitto")
    await broker.start()
    runtime: ConsoleRuntime | None = None
    try:
        org, playbook = write_files(directory, url)
        settings = Settings(
            org="bench",
            data_dir=directory / "data",
            org_file=org,
            playbook=playbook,
            operator="ola",
            broker=BrokerSettings(
                host=broker.host,
                port=broker.port,
                username="console",
                password=broker.credentials.console,
            ),
        )
        runtime = ConsoleRuntime(settings, signer=Signer.generate())
        await runtime.start()
        assert len(runtime.bridges) == WEBHOOKS + 1, runtime.bridge_errors
        await publish_and_wait(runtime, "Oppvarming", ("kanal1",))  # connections warm
        singles = [
            await publish_and_wait(runtime, f"Enkel {cid}", (cid,))
            for cid in ("nettside", *(f"kanal{i}" for i in range(1, WEBHOOKS + 1)))
        ]
        rounds = [await publish_and_wait(runtime, f"Alle kanaler {n}", ()) for n in range(3)]
        everything = statistics.median(rounds)
        seq = await sequential(org, directory)
        line("broadcast_vs_slowest_single", everything, max(singles))
        line("broadcast_vs_sequential", everything, seq)
    finally:
        if runtime is not None:
            await runtime.stop()
        await broker.stop()
        server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main()))
    except Exception as exc:
        print(f"bench/broadcast.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
