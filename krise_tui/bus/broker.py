"""Brokers krise starts itself: a private mosquitto, or the embedded amqtt fallback.

With no broker configured, the console starts one so that the first run needs nothing
installed: a local ``mosquitto`` binary with the project's ``broker/`` config on a free
port when there is one, otherwise amqtt in-process on 127.0.0.1. amqtt is weaker — it
did not queue QoS 1 messages for an offline persistent session, and it runs without the
ACL — so it is for demos and one-machine drills, and krise says so.

The running broker's address and the generated credentials are written to
``{broker_dir}/endpoint.json`` (0600) so that staff terminals and bridges started on
the same machine find it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STANDARD_BRIDGES = ("website", "facebook", "mastodon", "sms", "email", "intranet", "drill")
DEMO_STAFF = tuple(f"ansatt-{i:03d}" for i in range(1, 21))
EMBEDDED_SIMULATED_STAFF = 5000
"""Simulated staff users an embedded mosquitto gets, for `krise staff --simulate`."""


class BrokerKind(StrEnum):
    """Which broker is in use."""

    EXTERNAL = "external"
    MOSQUITTO = "mosquitto"
    AMQTT = "amqtt"


WEAK_BROKER_WARNING = (
    "Innebygd amqtt-megler: bare for demo og øvelse på én maskin. Den køer ikke QoS 1-"
    " meldinger for frakoblede klienter og har ingen tilgangskontroll (ACL)."
    " / Embedded amqtt broker: demos and one-machine drills only; it does not queue QoS 1"
    " messages for offline clients and has no ACL."
)


class BrokerError(Exception):
    """The broker could not be started or its files are wrong."""


def broker_config_dir() -> Path:
    """The project's ``broker/`` directory (source checkout or installed copy)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "broker", here.parents[1] / "_broker"):
        if (candidate / "mosquitto.conf").exists():
            return candidate
    raise BrokerError("cannot find krise's broker/ directory (mosquitto.conf and acl)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- users -----------------------------------------------------------------------------


def mosquitto_password_hash(password: str, *, iterations: int = 101) -> str:
    """Hash a password the way ``mosquitto_passwd`` 2.x does (PBKDF2-SHA512, ``$7$``)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_password_file(path: Path, users: dict[str, str]) -> None:
    """Write a mosquitto password file for ``users`` (name -> clear password), 0600."""
    hashes: dict[str, str] = {}  # simulated users share one password: hash it once
    lines = []
    for name, pw in sorted(users.items()):
        if pw not in hashes:
            hashes[pw] = mosquitto_password_hash(pw)
        lines.append(f"{name}:{hashes[pw]}")
    _write_private(path, "\n".join(lines) + "\n")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def bridge_acl_block(channel: str) -> str:
    """The ACL lines for one channel's bridge user."""
    user = f"bridge-{channel}"
    return (
        f"user {user}\n"
        f"topic read krise/v1/+/channel/{channel}/out\n"
        f"topic write krise/v1/+/channel/{channel}/in\n"
        f"topic write krise/v1/+/channel/{channel}/receipt\n"
        f"topic readwrite krise/v1/+/presence/bridge/{user}\n"
    )


@dataclass
class Credentials:
    """Generated users of a private broker."""

    console: str
    staff: dict[str, str] = field(default_factory=dict)
    bridges: dict[str, str] = field(default_factory=dict)
    simulated: int = 0
    """Number of simulated staff users ``sim-00001``… (load simulator, drills)."""
    sim_password: str = ""
    """The one password all simulated staff users share."""

    @classmethod
    def generate(
        cls,
        *,
        staff_ids: tuple[str, ...] = DEMO_STAFF,
        bridges: tuple[str, ...] = STANDARD_BRIDGES,
        simulated: int = 0,
    ) -> Credentials:
        """Random passwords for a console, ``staff_ids``, ``bridges`` and simulated staff."""
        return cls(
            console=secrets.token_urlsafe(18),
            staff={sid: secrets.token_urlsafe(18) for sid in staff_ids},
            bridges={f"bridge-{ch}": secrets.token_urlsafe(18) for ch in bridges},
            simulated=simulated,
            sim_password=secrets.token_urlsafe(18) if simulated else "",
        )

    def sim_ids(self) -> list[str]:
        """The simulated staff ids."""
        return [sim_staff_id(i) for i in range(1, self.simulated + 1)]

    def users(self) -> dict[str, str]:
        """All users, name -> password."""
        sims = dict.fromkeys(self.sim_ids(), self.sim_password)
        return {"console": self.console, **self.staff, **self.bridges, **sims}

    def to_json(self) -> dict[str, Any]:
        """Serialisable form."""
        return {
            "console": self.console,
            "staff": self.staff,
            "bridges": self.bridges,
            "simulated": self.simulated,
            "sim_password": self.sim_password,
        }


def sim_staff_id(n: int) -> str:
    """The id of simulated staff member ``n`` (1-based)."""
    return f"sim-{n:05d}"


def render_mosquitto_conf(
    template: Path,
    *,
    port: int,
    password_file: Path,
    acl_file: Path,
    data_dir: Path,
    host: str = "127.0.0.1",
    run_as_root: bool | None = None,
) -> str:
    """Rewrite the project's mosquitto.conf for a private instance.

    Only the deployment-specific lines change (listener, file paths, logging);
    everything else — anonymous off, persistence, limits — is the real config.
    """
    replaced = {
        "listener": f"listener {port} {host}",
        "password_file": f"password_file {password_file}",
        "acl_file": f"acl_file {acl_file}",
        "persistence_location": f"persistence_location {data_dir}/",
        "log_dest": f"log_dest file {data_dir / 'mosquitto.log'}",
        "autosave_interval": "autosave_interval 1",
    }
    out: list[str] = []
    seen: set[str] = set()
    for line in template.read_text(encoding="utf-8").splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else ""
        if key in replaced:
            if key not in seen:
                out.append(replaced[key])
                seen.add(key)
            continue
        out.append(line)
    for key, value in replaced.items():
        if key not in seen:
            out.append(value)
    root = os.geteuid() == 0 if run_as_root is None else run_as_root
    if root:
        # mosquitto started as root drops to the `mosquitto` user before reading the
        # 0600 password and ACL files; stay root for a private instance instead.
        out.append("user root")
    return "\n".join(out) + "\n"


# --- running brokers ---------------------------------------------------------------------


@dataclass
class Endpoint:
    """Where a broker listens and which users it has (for local clients)."""

    host: str
    port: int
    kind: BrokerKind
    credentials: Credentials | None = None

    def to_json(self) -> dict[str, Any]:
        """Serialisable form."""
        return {
            "host": self.host,
            "port": self.port,
            "kind": str(self.kind),
            "credentials": None if self.credentials is None else self.credentials.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoint:
        """Parse :meth:`to_json` output."""
        creds = data.get("credentials")
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            kind=BrokerKind(data["kind"]),
            credentials=None
            if creds is None
            else Credentials(
                console=creds["console"],
                staff=creds["staff"],
                bridges=creds["bridges"],
                simulated=int(creds.get("simulated", 0)),
                sim_password=str(creds.get("sim_password", "")),
            ),
        )

    def login(self, role: str, member_id: str | None = None) -> tuple[str | None, str | None]:
        """User name and password for ``role`` (console / staff / bridge)."""
        if self.credentials is None:
            return None, None
        if role == "console":
            return "console", self.credentials.console
        if role == "staff" and member_id is not None:
            if member_id in self.credentials.sim_ids():
                return member_id, self.credentials.sim_password
            if member_id not in self.credentials.staff:
                known = ", ".join(sorted(self.credentials.staff)[:5])
                raise BrokerError(
                    f"staff id {member_id!r} is not a user of this broker (known: {known}, …)"
                )
            return member_id, self.credentials.staff[member_id]
        if role == "bridge" and member_id is not None:
            user = f"bridge-{member_id}"
            if user not in self.credentials.bridges:
                raise BrokerError(f"no bridge user {user!r} on this broker")
            return user, self.credentials.bridges[user]
        raise BrokerError(f"no credentials for role {role!r}")


def write_endpoint(path: Path, endpoint: Endpoint) -> None:
    """Publish the endpoint for local clients (0600: it holds passwords)."""
    _write_private(path, json.dumps(endpoint.to_json(), indent=2))


def read_endpoint(path: Path) -> Endpoint:
    """Read an endpoint written by :func:`write_endpoint`."""
    try:
        return Endpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise BrokerError(
            f"{path}: no running krise broker found (start `krise console` or `krise broker`,"
            " or configure [broker] host)"
        ) from exc
    except (ValueError, KeyError) as exc:
        raise BrokerError(f"{path}: unreadable broker endpoint ({exc})") from exc


async def wait_for_port(host: str, port: int, *, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on ``host:port``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise BrokerError(
                    f"nothing listens on {host}:{port} after {timeout:.0f} s"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


class MosquittoBroker:
    """A private mosquitto process run from the project's ``broker/`` config."""

    kind = BrokerKind.MOSQUITTO

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        credentials: Credentials | None = None,
        extra_bridges: tuple[str, ...] = (),
        binary: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.credentials = credentials or Credentials.generate(simulated=EMBEDDED_SIMULATED_STAFF)
        self.extra_bridges = extra_bridges
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process: subprocess.Popen[bytes] | None = None
        self.conf_path = self.directory / "mosquitto.conf"
        self.data_dir = self.directory / "data"

    def write_files(self) -> None:
        """Render the config, ACL and password file into :attr:`directory`."""
        src = broker_config_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        acl = (src / "acl").read_text(encoding="utf-8")
        for channel in self.extra_bridges:
            acl += "\n" + bridge_acl_block(channel)
        acl_path = self.directory / "acl"
        _write_private(acl_path, acl)
        passwd = self.directory / "passwd"
        write_password_file(passwd, self.credentials.users())
        self.conf_path.write_text(
            render_mosquitto_conf(
                src / "mosquitto.conf",
                port=self.port,
                password_file=passwd,
                acl_file=acl_path,
                data_dir=self.data_dir,
                host=self.host,
            ),
            encoding="utf-8",
        )

    async def start(self) -> Endpoint:
        """Start mosquitto and wait until it accepts connections."""
        self.write_files()
        if shutil.which(self.binary) is None and not Path(self.binary).exists():
            raise BrokerError(f"mosquitto binary not found ({self.binary})")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            await wait_for_port(self.host, self.port)
        except BrokerError as exc:
            stderr = b""
            if self.process.poll() is not None and self.process.stderr is not None:
                stderr = self.process.stderr.read()
            await self.stop()
            logfile = self.data_dir / "mosquitto.log"
            tail = logfile.read_text(errors="replace")[-800:] if logfile.exists() else ""
            raise BrokerError(
                f"mosquitto did not start on port {self.port}: {exc}\n"
                f"{stderr.decode(errors='replace')}{tail}"
            ) from exc
        log.info("private mosquitto listening on %s:%s", self.host, self.port)
        return self.endpoint

    @property
    def endpoint(self) -> Endpoint:
        """Where it listens."""
        return Endpoint(self.host, self.port, BrokerKind.MOSQUITTO, self.credentials)

    async def stop(self, *, kill: bool = False) -> None:
        """Stop mosquitto (SIGTERM saves persistence; ``kill`` skips that)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)
        if proc.stderr is not None:
            proc.stderr.close()


class AmqttBroker:
    """amqtt in-process on 127.0.0.1: the zero-install fallback (weaker guarantees)."""

    kind = BrokerKind.AMQTT

    def __init__(self, *, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._broker: Any = None

    async def start(self) -> Endpoint:
        """Start the embedded broker."""
        from amqtt.broker import Broker

        # amqtt logs every connection at INFO; keep the console's log readable.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        await self._broker.start()
        await wait_for_port(self.host, self.port)
        log.warning(WEAK_BROKER_WARNING)
        return self.endpoint

    @property
    def endpoint(self) -> Endpoint:
        """Where it listens (no credentials: amqtt runs anonymous here)."""
        return Endpoint(self.host, self.port, BrokerKind.AMQTT, None)

    async def stop(self, *, kill: bool = False) -> None:
        """Shut it down."""
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.shutdown()


EmbeddedBroker = MosquittoBroker | AmqttBroker


def choose_embedded(
    preference: str, directory: Path, *, bridges: tuple[str, ...] = ()
) -> EmbeddedBroker:
    """Pick the embedded broker: a local mosquitto when installed, else amqtt.

    ``bridges`` are the org's channel ids: each gets a ``bridge-<id>`` user and its ACL
    block, so the in-process bridges (and `krise bridge ID`) can log in.
    """
    if preference in ("auto", "mosquitto") and shutil.which("mosquitto"):
        extra = tuple(b for b in bridges if b not in STANDARD_BRIDGES)
        credentials = Credentials.generate(
            bridges=(*STANDARD_BRIDGES, *extra), simulated=EMBEDDED_SIMULATED_STAFF
        )
        return MosquittoBroker(directory, credentials=credentials, extra_bridges=extra)
    if preference == "mosquitto":
        raise BrokerError("broker.embedded = 'mosquitto' but no mosquitto binary is installed")
    return AmqttBroker()
