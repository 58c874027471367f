"""Arbitrary bytes on every subscribed topic: each one journaled (accepted or rejected) once,
and the state in memory always equals the state folded from the journal."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krise_tui.core.engine import ReceiveFromBus
from krise_tui.core.features.freeze import Freeze
from krise_tui.core.features.incident import OpenIncident
from krise_tui.core.state import IncidentState, state_hash
from krise_tui.journal.store import Journal, verify_file
from krise_tui.runtime import source_for
from krise_tui.runtime.writer import JournalWriter
from tests.corekit import make_ctx

TOPICS = [
    "krise/v1/test/channel/facebook/in",
    "krise/v1/test/channel/website/receipt",
    "krise/v1/test/staff/ansatt-001/ack",
    "krise/v1/test/presence/staff/ansatt-002",
    "krise/v1/test/freeze",
    "krise/v1/other/channel/sms/in",
    "krise/v1/test/unknown/thing",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=30) | st.integers(),
        "text": st.text(max_size=200),
        "staff_id": st.sampled_from(["ansatt-001", "ansatt-002", "x"]),
        "seq": st.integers(min_value=-2, max_value=4) | st.text(max_size=3) | st.booleans(),
        "status": st.sampled_from(["online", "offline", "sent", "delivered", "failed", "?"]),
        "effect_id": st.text(max_size=10),
        "meta": json_values,
    },
)
payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
)
messages = st.lists(st.tuples(st.sampled_from(TOPICS), payloads), min_size=1, max_size=25)


async def _run(items: list[tuple[str, bytes]], path: Path) -> tuple[IncidentState, int, int]:
    journal = await Journal.open(path)
    try:
        writer = JournalWriter(
            journal, IncidentState(), lambda actor: make_ctx(actor or "bus"), lambda: None
        )
        await writer.submit(OpenIncident("Flom"), actor="ola")
        await writer.submit(Freeze("Flom"), actor="kari")
        task = asyncio.create_task(writer.run_inbound())
        try:
            for topic, payload in items:
                writer.put(ReceiveFromBus(source_for(topic), payload))
            await asyncio.wait_for(writer.flush(), 30)
        finally:
            task.cancel()
        rejected = writer.rejected_inbound
        folded = await journal.load_state(use_snapshot=False)
        assert state_hash(folded) == state_hash(writer.state)  # memory == journal
        count = await journal.count()
    finally:
        await journal.close()
    return writer.state, count, rejected


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(messages)
def test_any_bytes_on_any_topic_are_journaled_and_memory_agrees(
    items: list[tuple[str, bytes]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.sqlite3"
        state, rows, rejected = asyncio.run(_run(items, path))
        assert verify_file(path).ok
        # every message is accounted for: a rejection, an event, or a recognised repeat
        assert state.inbound.rejected == rejected
        assert rejected <= len(items)
        assert state.event_count == rows
