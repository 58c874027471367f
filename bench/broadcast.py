"""Broadcast benchmark: one approved version to 8 channels whose endpoints answer in 100 ms.

Run as ``python bench/broadcast.py`` (bounded: every wait has a deadline; about a
minute). A private mosquitto, the console runtime with its in-process bridges (as
``krise console`` runs them), and 8 local HTTP servers in a separate process, each
answering every request after 100 ms: the website's CMS notification and 7 webhooks.
Every figure is the median of :data:`ROUNDS` rounds; one line each,
``FIGURE: measured=V UNIT baseline=V UNIT ratio=R min=V max=V`` (min/max of the
measured value):

- ``broadcast_vs_slowest_single``: seconds from the ``PublishVersion`` command until the
  console's ledger shows all 8 channels delivered (the bridges' receipts journaled),
  against the same pipeline publishing to one channel alone, for the slowest channel
  (per channel the median over the rounds, then the largest). Target ratio ≤ 1.2: the
  channels do not wait for each other.
- ``broadcast_vs_sequential``: the same broadcast against delivering to the 8
  endpoints one after another through the same adapters, with one pooled HTTP client
  lent to them as the bridges do (no bus): the gain from doing them at once.

The servers run in their own process so that their threads do not compete with the
console for the interpreter lock, as a real platform would not.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from figures import figure

from krise_tui.bus.broker import Credentials, MosquittoBroker
from krise_tui.bus.envelope import Signer
from krise_tui.channels.base import ApprovedMessage, HttpChannel
from krise_tui.channels.from_org import channel_from_def
from krise_tui.config import BridgeLogin, BrokerSettings, Settings
from krise_tui.core.features.messages import (
    DeliveryStatus,
    DraftSaved,
    DraftVariant,
    MessageApproved,
    PublishVersion,
    SaveDraft,
)
from krise_tui.core.kernel import Accepted, EventBase
from krise_tui.core.state import IncidentState
from krise_tui.playbook.loader import load_org
from krise_tui.playbook.models import hash_passphrase
from krise_tui.runtime import ConsoleRuntime

ROOT = Path(__file__).resolve().parents[1]
DELAY = 0.100
WEBHOOKS = 7
CHANNELS = ("nettside", *(f"kanal{i}" for i in range(1, WEBHOOKS + 1)))
ROUNDS = 7
WEB = "https://www.bench.kommune.no"
DEADLINE = 30.0


# --------------------------------------------------------------------------- servers


class SlowHandler(BaseHTTPRequestHandler):
    """Answers every POST after DELAY seconds, like a busy platform."""

    protocol_version = "HTTP/1.1"  # keep-alive, as platforms do: the pooled client reuses
    counter = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

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


def serve(n: int) -> None:
    """``--serve N``: N servers; print their ports, serve until stdin closes."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler) for _ in range(n)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps([s.server_address[1] for s in servers]), flush=True)
    sys.stdin.read()


def start_servers(n: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ports = json.loads(proc.stdout.readline())
    return proc, [f"http://127.0.0.1:{port}" for port in ports]


# --------------------------------------------------------------------------- the console


def write_files(directory: Path, urls: list[str]) -> tuple[Path, Path]:
    hooks = "\n".join(
        f"  - {{id: kanal{i}, kind: webhook, endpoint: {urls[i]}/hook}}"
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
  - {{id: nettside, kind: website, endpoint: {urls[0]}/cms,
      options: {{directory: {directory / "www"}}}}}
{hooks}
""",
        encoding="utf-8",
    )
    source = (ROOT / "playbooks" / "flom-og-skred.yaml").read_text(encoding="utf-8")
    playbook = directory / "playbook.yaml"
    text = source.replace(
        "channels: [nettside, facebook, sms, epost, ansatte]", f"channels: [{', '.join(CHANNELS)}]"
    ).replace("on_activation: true", "on_activation: false")
    assert text != source
    playbook.write_text(text, encoding="utf-8")
    return org, playbook


async def settle(runtime: ConsoleRuntime, quiet: float = 1.5, timeout: float = 180.0) -> None:
    """Wait until the console's background work after start is done: the question
    batcher loads its neural model and seeds the playbook's questions in a worker thread,
    which would compete with what is measured. Then until nothing is journaled for
    ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    batching = getattr(runtime, "batching", None)
    while batching is not None and not batching.ready and loop.time() < deadline:
        await asyncio.sleep(0.1)
    last = [loop.time()]
    runtime.on_state(lambda _state, _events: last.__setitem__(0, loop.time()))
    while loop.time() - last[0] < quiet and loop.time() < deadline:
        await asyncio.sleep(0.1)
    for service in (batching, getattr(runtime, "matching", None)):
        if service is not None:
            await asyncio.wait_for(service.flush(), max(1.0, deadline - loop.time()))


class Delivered:
    """Notes the moment the console's ledger shows a version delivered everywhere."""

    def __init__(self) -> None:
        self.version_id: str | None = None
        self.done = asyncio.Event()
        self.at = 0.0

    def __call__(self, state: IncidentState, _events: list[EventBase]) -> None:
        if self.version_id is None or self.done.is_set():
            return
        ledger = state.messages.ledger(self.version_id)
        if ledger and all(d.status is DeliveryStatus.DELIVERED for d in ledger):
            self.at = time.perf_counter()
            self.done.set()


async def publish_and_wait(
    runtime: ConsoleRuntime, watch: Delivered, text: str, channels: tuple[str, ...]
) -> float:
    """Draft and approve (untimed), then time PublishVersion → every channel delivered."""
    saved = await runtime.submit(
        SaveDraft((DraftVariant("nb", "Benchmark", f"{text} {WEB}"),), channels=channels)
    )
    assert isinstance(saved, Accepted), saved
    draft = saved.events[0]
    assert isinstance(draft, DraftSaved)
    approved = await runtime.approve(draft.draft_id, approver="kari", passphrase="k")
    assert isinstance(approved, Accepted), approved
    version = approved.events[0]
    assert isinstance(version, MessageApproved)
    watch.version_id = version.version_id
    watch.done.clear()
    await asyncio.sleep(0.05)  # let the approval's own work settle
    start = time.perf_counter()
    published = await runtime.submit(PublishVersion(version.version_id), actor="kari")
    assert isinstance(published, Accepted), published
    try:
        await asyncio.wait_for(watch.done.wait(), DEADLINE)
    except TimeoutError:
        ledger = runtime.state.messages.ledger(version.version_id)
        raise RuntimeError(
            f"not delivered: {[(d.channel, d.status.value, d.reason) for d in ledger]}"
        ) from None
    ledger = runtime.state.messages.ledger(version.version_id)
    assert sorted(d.channel for d in ledger) == sorted(channels or CHANNELS), ledger
    return watch.at - start


async def sequential(org_path: Path, directory: Path, round_no: int) -> float:
    """The same 8 deliveries, one after another, through the adapters, one pooled client."""
    org = load_org(org_path)
    adapters = [
        channel_from_def(c, state_dir=directory / "seq", website_url=WEB, base_dir=directory)
        for c in org.channels
    ]
    version = f"{round_no:02d}" + "a" * 62
    message = ApprovedMessage.model_validate(
        {
            "version_id": version,
            "org_name": org.name,
            "website_url": WEB,
            "variants": [{"lang": "nb", "headline": "Benchmark", "body": f"Sekvensielt {WEB}"}],
            "signature": "Ola Hansen, informasjonsmedarbeider",
            "published_at": datetime.now(UTC).isoformat(),
        }
    )
    async with httpx.AsyncClient(follow_redirects=False) as pooled:
        for adapter in adapters:
            assert isinstance(adapter, HttpChannel)
            adapter.lend_client(pooled)
        for channel in org.channels:  # open the pool's connections, as a warm bridge has
            await pooled.get(str(channel.endpoint))
        start = time.perf_counter()
        for adapter in adapters:
            result = await adapter.deliver(message, idempotency_key=f"{version}:{adapter.name}")
            assert result.ok, result.reason
        return time.perf_counter() - start


async def main() -> int:
    started = time.perf_counter()
    servers, urls = start_servers(len(CHANNELS))
    directory = Path(tempfile.mkdtemp(prefix="krise-bench-broadcast-"))
    creds = Credentials.generate(staff_ids=(), bridges=CHANNELS)
    broker = MosquittoBroker(directory / "mosquitto", credentials=creds, org="bench")
    await broker.start()
    runtime: ConsoleRuntime | None = None
    try:
        org, playbook = write_files(directory, urls)
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
                password=creds.console,
                bridges={
                    user.removeprefix("bridge-"): BridgeLogin(username=user, password=secret)
                    for user, secret in creds.bridges.items()
                },
            ),
        )
        runtime = ConsoleRuntime(settings, signer=Signer.generate())
        await runtime.start()
        assert len(runtime.bridges) == len(CHANNELS), runtime.bridge_errors
        for bridge in runtime.bridges.values():
            await bridge.wait_connected(10)
        await settle(runtime)
        watch = Delivered()
        runtime.on_state(watch)
        await publish_and_wait(runtime, watch, "Oppvarming", ())  # connections warm
        singles: dict[str, list[float]] = {c: [] for c in CHANNELS}
        everything: list[float] = []
        seq: list[float] = []
        for n in range(ROUNDS):
            for cid in CHANNELS:
                singles[cid].append(await publish_and_wait(runtime, watch, f"{cid} {n}", (cid,)))
            everything.append(await publish_and_wait(runtime, watch, f"Alle {n}", ()))
            seq.append(await sequential(org, directory, n))
        slowest = max(statistics.median(runs) for runs in singles.values())
        per_channel = " ".join(f"{c}={statistics.median(r):.3f}" for c, r in singles.items())
        print(f"# single-channel medians (s): {per_channel}", file=sys.stderr)
        figure("broadcast_vs_slowest_single", everything, slowest, "s")
        figure("broadcast_vs_sequential", everything, statistics.median(seq), "s")
    finally:
        if runtime is not None:
            await runtime.stop()
        await broker.stop()
        servers.kill()
        servers.wait()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"# total {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        raise SystemExit(0)
    try:
        raise SystemExit(asyncio.run(main()))
    except Exception as exc:
        print(f"bench/broadcast.py: could not measure: {exc!r}", file=sys.stderr)
        raise SystemExit(1) from exc
