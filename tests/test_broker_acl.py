"""ACL matrix against a real mosquitto running the project's config and a generated ACL.

The broker serves two orgs (``test`` and ``nabo``, one :func:`generate_acl` each) and
every role: console, staff, simulated staff, channel bridges and the drill injector.

- Write: every user publishes to every topic of both orgs over MQTT 5; the PUBACK says
  whether the ACL allowed it (0x87 Not authorized otherwise), which :class:`BusSession`
  raises as :class:`PublishRefusedError`.
- Read: every topic holds a retained message; a user subscribed to ``krise/#`` gets
  exactly the ones it may read (mosquitto checks the read ACL per delivered message).

The expected rights below are written out by hand from broker/README.md, not derived
from the generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from aiomqtt import ProtocolVersion

from krise_tui.bus.broker import (
    STANDARD_BRIDGES,
    BrokerError,
    Credentials,
    MosquittoBroker,
    broker_config_dir,
    generate_acl,
    mosquitto_password_hash,
    render_mosquitto_conf,
    sim_staff_id,
    write_atomic,
    write_password_file,
)
from krise_tui.bus.session import (
    BusSession,
    PublishRefusedError,
    SessionConfig,
    connack_code,
    describe_error,
)
from tests.conftest import client_for

ORG, NABO = "test", "nabo"
TEST_STAFF = ("ansatt-001", "ansatt-002")
TEST_BRIDGES = ("sms", "testchan", "drill")
NABO_USERS = ("console-nabo", "nabo-001", "bridge-nabosms")

WRITES: dict[str, list[str]] = {
    "console": [
        "test/freeze",
        "test/message/current",
        "test/channel/+/out",
        "test/staff/+/remind",
        "test/presence/console/+",
    ],
    "ansatt-001": ["test/staff/ansatt-001/ack", "test/presence/staff/ansatt-001"],
    "ansatt-002": ["test/staff/ansatt-002/ack", "test/presence/staff/ansatt-002"],
    "sim-00001": ["test/staff/sim-00001/ack", "test/presence/staff/sim-00001"],
    "bridge-sms": [
        "test/channel/sms/in",
        "test/channel/sms/receipt",
        "test/presence/bridge/bridge-sms",
    ],
    "bridge-testchan": [
        "test/channel/testchan/in",
        "test/channel/testchan/receipt",
        "test/presence/bridge/bridge-testchan",
    ],
    "bridge-drill": ["test/channel/+/in", "test/presence/bridge/bridge-drill"],
    "console-nabo": [
        "nabo/freeze",
        "nabo/message/current",
        "nabo/channel/+/out",
        "nabo/staff/+/remind",
        "nabo/presence/console/+",
    ],
    "nabo-001": ["nabo/staff/nabo-001/ack", "nabo/presence/staff/nabo-001"],
    "bridge-nabosms": [
        "nabo/channel/nabosms/in",
        "nabo/channel/nabosms/receipt",
        "nabo/presence/bridge/bridge-nabosms",
    ],
}
READS: dict[str, list[str]] = {
    "console": ["test/#"],
    "ansatt-001": ["test/freeze", "test/message/current", "test/staff/ansatt-001/remind"],
    "ansatt-002": ["test/freeze", "test/message/current", "test/staff/ansatt-002/remind"],
    "sim-00001": ["test/freeze", "test/message/current", "test/staff/sim-00001/remind"],
    "bridge-sms": ["test/channel/sms/out"],
    "bridge-testchan": ["test/channel/testchan/out"],
    "bridge-drill": [],
    "console-nabo": ["nabo/#"],
    "nabo-001": ["nabo/freeze", "nabo/message/current", "nabo/staff/nabo-001/remind"],
    "bridge-nabosms": ["nabo/channel/nabosms/out"],
}
ROLE_OF = {
    "console": "console",
    "ansatt-001": "staff",
    "ansatt-002": "staff",
    "sim-00001": "simulated staff",
    "bridge-sms": "bridge",
    "bridge-testchan": "bridge",
    "bridge-drill": "drill injector",
    "console-nabo": "second org's console",
    "nabo-001": "second org's staff",
    "bridge-nabosms": "second org's bridge",
}


def universe() -> list[str]:
    """Every topic of both orgs a user might try, including borrowed-looking ones."""
    ids = ("ansatt-001", "ansatt-002", "sim-00001", "nabo-001", "bridge-sms", "console")
    out: list[str] = []
    for org in (ORG, NABO):
        root = f"krise/v1/{org}"
        out += [f"{root}/freeze", f"{root}/message/current"]
        for ch in ("sms", "testchan", "nabosms", "drill"):
            out += [f"{root}/channel/{ch}/{leaf}" for leaf in ("out", "in", "receipt")]
        for sid in ids:  # staff/bridge-sms/ack: a bridge posing as a staff id
            out += [f"{root}/staff/{sid}/ack", f"{root}/staff/{sid}/remind"]
        out += [f"{root}/presence/console/console", f"{root}/presence/console/console-nabo"]
        out += [f"{root}/presence/staff/{sid}" for sid in ids]
        for user in (
            "bridge-sms",
            "bridge-testchan",
            "bridge-drill",
            "bridge-nabosms",
            "ansatt-001",
        ):
            out.append(f"{root}/presence/bridge/{user}")
    return out


def matches(pattern: str, topic: str) -> bool:
    want, have = f"krise/v1/{pattern}".split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or level not in ("+", have[i]):
            return False
    return len(want) == len(have)


def allowed(rules: dict[str, list[str]], user: str, topic: str) -> bool:
    return any(matches(p, topic) for p in rules[user])


class TwoOrgBroker(MosquittoBroker):
    """The project's config with both orgs' ACLs and users."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            directory,
            credentials=Credentials.generate(
                staff_ids=TEST_STAFF, bridges=TEST_BRIDGES, simulated=2
            ),
            org=ORG,
        )
        self.nabo = {name: f"pw-{name}-{i}" for i, name in enumerate(NABO_USERS)}

    def write_files(self) -> None:
        super().write_files()
        acl = (
            self.credentials.acl(ORG)
            + "\n"
            + generate_acl(
                NABO, console="console-nabo", staff_ids=("nabo-001",), bridges=("nabosms",)
            )
        )
        write_atomic(self.directory / "acl", acl)
        write_password_file(self.directory / "passwd", self.users())

    def users(self) -> dict[str, str]:
        return {**self.credentials.users(), **self.nabo}


@pytest.fixture
async def two_orgs(tmp_path: Path) -> AsyncIterator[TwoOrgBroker]:
    broker = TwoOrgBroker(tmp_path / "broker")
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@contextlib.asynccontextmanager
async def session_as(broker: TwoOrgBroker, user: str) -> AsyncIterator[BusSession]:
    async def ignore(topic: str, payload: bytes, retained: bool) -> None:
        return None

    config = SessionConfig(
        broker.host, broker.port, client_id=user, username=user, password=broker.users()[user]
    )
    session = BusSession(config, ignore)
    task = asyncio.create_task(session.run())
    try:
        await session.wait_connected(10)
        yield session
    finally:
        await session.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_every_user_has_rules_and_a_role() -> None:
    assert set(WRITES) == set(READS) == set(ROLE_OF)
    assert {"console", "staff", "simulated staff", "bridge", "drill injector"} <= set(
        ROLE_OF.values()
    )


@pytest.mark.parametrize("user", sorted(WRITES))
async def test_write_matrix(two_orgs: TwoOrgBroker, user: str) -> None:
    permitted: set[str] = set()
    async with session_as(two_orgs, user) as session:
        for topic in universe():
            try:
                await session.publish(topic, b'{"probe": true}')
            except PublishRefusedError as exc:
                assert exc.reason_code == 0x87, exc
            else:
                permitted.add(topic)
    expected = {t for t in universe() if allowed(WRITES, user, t)}
    assert expected, f"{user} ({ROLE_OF[user]}) should be able to write something"
    assert permitted == expected, (
        f"{user} ({ROLE_OF[user]}): wrongly allowed {sorted(permitted - expected)},"
        f" wrongly denied {sorted(expected - permitted)}"
    )


async def seed_retained(broker: TwoOrgBroker) -> set[str]:
    """A retained message on every topic some user may write; returns those topics."""
    seeded: set[str] = set()
    for writer in WRITES:
        async with session_as(broker, writer) as session:
            for topic in universe():
                if topic not in seeded and allowed(WRITES, writer, topic):
                    await session.publish(topic, topic.encode(), retain=True)
                    seeded.add(topic)
    return seeded


@pytest.mark.parametrize("user", sorted(READS))
async def test_read_matrix(two_orgs: TwoOrgBroker, user: str) -> None:
    seeded = await seed_retained(two_orgs)
    endpoint = two_orgs.endpoint
    assert endpoint.credentials is not None
    client = aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=user,
        password=two_orgs.users()[user],
        protocol=ProtocolVersion.V5,
        timeout=5,
    )
    async with client:
        # QoS 0: the retained messages go out at once, in order, before anything the
        # broker does for the next packet on this connection.
        await client.subscribe("krise/#", qos=0)
        own = next(t for t in universe() if allowed(WRITES, user, t) and "/presence/" in t)
        await client.publish(own, b"round trip", qos=1)  # its PUBACK comes after them
        got = set()
        while len(client.messages):
            message = await anext(aiter(client.messages))
            got.add(str(message.topic))
    expected = {t for t in seeded if allowed(READS, user, t)}
    assert got == expected, (
        f"{user} ({ROLE_OF[user]}): read what it may not {sorted(got - expected)},"
        f" missed {sorted(expected - got)}"
    )


async def test_five_thousand_simulated_users_start_fast_and_stay_apart(tmp_path: Path) -> None:
    broker = MosquittoBroker(
        tmp_path / "broker",
        credentials=Credentials.generate(staff_ids=(), bridges=(), simulated=5000),
        org=ORG,
    )
    began = time.monotonic()
    await broker.start()
    try:
        assert time.monotonic() - began < 10  # measured: about 0.6 s (0.07 s with patterns)
        last, other = sim_staff_id(5000), sim_staff_id(4999)
        assert broker.credentials.sim_password
        config = SessionConfig(
            broker.host,
            broker.port,
            client_id=other,
            username=other,
            password=broker.credentials.sim_password,
        )

        async def ignore(topic: str, payload: bytes, retained: bool) -> None:
            return None

        session = BusSession(config, ignore)
        task = asyncio.create_task(session.run())
        try:
            await session.wait_connected(10)
            await session.publish(f"krise/v1/{ORG}/staff/{other}/ack", b"{}")
            with pytest.raises(PublishRefusedError):
                await session.publish(f"krise/v1/{ORG}/staff/{last}/ack", b"{}")
        finally:
            await session.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await broker.stop()


def test_generator_refuses_names_roles_would_share() -> None:
    with pytest.raises(BrokerError, match="would be both console and staff"):
        generate_acl(ORG, staff_ids=("console",))
    with pytest.raises(BrokerError, match="reserved"):
        generate_acl(ORG, staff_ids=("bridge-sms",))
    with pytest.raises(BrokerError, match="reserved"):
        generate_acl(ORG, staff_ids=("sim-00001",))
    with pytest.raises(BrokerError, match="must be 1-64"):
        generate_acl(ORG, staff_ids=("ansatt 1",))
    with pytest.raises(BrokerError, match="must be 1-64"):
        generate_acl("test/+", staff_ids=())
    acl = generate_acl(ORG, staff_ids=TEST_STAFF, bridges=TEST_BRIDGES)
    assert not any(line.startswith("pattern") for line in acl.splitlines())


def test_the_shipped_acl_is_the_generated_example() -> None:
    shipped = (broker_config_dir() / "acl").read_text(encoding="utf-8")
    example = generate_acl(
        "eksempel",
        staff_ids=("ansatt-001", "ansatt-002", "ansatt-003"),
        bridges=STANDARD_BRIDGES,
    )
    assert shipped == example, "regenerate broker/acl (see broker/README.md)"


async def test_anonymous_connections_are_refused(mosquitto: MosquittoBroker) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        async with client_for(mosquitto.endpoint, None):
            pass
    assert describe_error(info.value) == "not authorised (check user name, password and ACL)"


async def test_wrong_password_is_refused(mosquitto: MosquittoBroker) -> None:
    client = aiomqtt.Client(
        mosquitto.host,
        mosquitto.port,
        username="console",
        password="wrong",
        protocol=ProtocolVersion.V5,
        timeout=5,
    )
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        async with client:
            pass
    assert connack_code(info.value) in (134, 135)


def test_password_hash_has_mosquitto_format() -> None:
    hashed = mosquitto_password_hash("pw")
    _, alg, iterations, salt, digest = hashed.split("$")
    assert (alg, iterations) == ("7", "101")
    assert len(salt) == 16 and len(digest) == 88


def test_rendered_config_keeps_the_security_settings(tmp_path: Path) -> None:
    text = render_mosquitto_conf(
        broker_config_dir() / "mosquitto.conf",
        port=12345,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        data_dir=tmp_path,
        run_as_root=True,
    )
    lines = text.splitlines()
    assert "listener 12345 127.0.0.1" in lines
    assert "allow_anonymous false" in lines
    assert "use_username_as_clientid true" in lines
    assert "persistence true" in lines
    assert f"acl_file {tmp_path / 'acl'}" in lines
    assert "user root" in lines
    assert not any(line.startswith("listener 1883") for line in lines)
