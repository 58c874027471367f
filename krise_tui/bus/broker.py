"""Brokers krise starts itself, and the mosquitto files every krise broker runs on.

With no broker configured, the console starts one so that the first run needs nothing
installed: a local ``mosquitto`` binary with the project's ``broker/`` config when there
is one, otherwise amqtt in-process on 127.0.0.1. amqtt is weaker — it did not queue QoS 1
messages for an offline persistent session, it runs without the ACL and speaks only
MQTT 3.1.1 — so it is for demos and one-machine drills, and krise says so.

A private broker owns its directory (``{broker_dir}``) while it runs, under a lock:

- ``endpoint.json`` (0600): address and generated passwords, for the staff terminals,
  bridges and simulators started on the same machine. Written when the broker listens,
  removed when it stops; a start removes one left behind by a broker that died.
- ``port``: the port it listened on, reused by the next start (a new one only when
  taken), so clients that remember the address find the broker again.
- ``mosquitto.conf``, ``passwd`` (0600), ``acl`` and ``data/`` (persistence).

Every file another process reads is written to a temporary file and renamed, so a
reader sees the old or the new file, never half of one. A private mosquitto dies with
the krise process that started it, even on ``kill -9`` (Linux: parent-death signal).

:func:`generate_acl` writes the ACL for one organisation: an explicit block per user,
no ``pattern`` lines (mosquitto applies patterns to every user, so roles would borrow
each other's rights). The same function serves private brokers and
``krise broker users`` for the municipality's own broker.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from krise_tui.bus import topics
from krise_tui.files import atomic_write

log = logging.getLogger(__name__)

STANDARD_BRIDGES = ("website", "facebook", "mastodon", "sms", "email", "intranet", "drill")
DEMO_STAFF = tuple(f"ansatt-{i:03d}" for i in range(1, 21))
EMBEDDED_SIMULATED_STAFF = 5000
"""Simulated staff users an embedded mosquitto gets, for `krise staff --simulate`."""

CONSOLE_USER = "console"
"""The console's broker user on a private broker (and the default in generated ACLs)."""
BRIDGE_PREFIX = "bridge-"
"""A bridge's broker user is ``bridge-<channel id>``."""
SIM_PREFIX = "sim-"
"""Simulated staff users are ``sim-00001``…; staff ids may not start with this."""
DRILL_CHANNEL = "drill"
"""The channel id of the drill injector: ``bridge-drill`` writes inbound posts on every
channel of its org (and reads nothing). No real channel may use this id."""
ANY_ORG = "+"
"""Org segment of an ACL that is not confined to one org (private brokers whose org is
not known; every user is still confined to its role)."""
ENDPOINT_FILE = "endpoint.json"
PORT_FILE = "port"
PID_FILE = "mosquitto.pid"
LOCK_FILE = "broker.lock"


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


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listener could bind ``host:port`` now.

    ``SO_REUSEADDR`` as mosquitto sets it: connections of a stopped broker lingering in
    TIME_WAIT do not make its port "taken", a live listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# --- files other processes read --------------------------------------------------------


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically with ``mode`` (see :func:`atomic_write`).

    Readers (mosquitto, staff terminals polling ``endpoint.json``) see the old file or
    the new one, never a truncated one.
    """
    atomic_write(path, text.encode("utf-8"), mode=mode)


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
    write_atomic(path, "\n".join(lines) + "\n")


def bridge_user(channel: str) -> str:
    """The broker user of ``channel``'s bridge."""
    return f"{BRIDGE_PREFIX}{channel}"


def sim_staff_id(n: int) -> str:
    """The id of simulated staff member ``n`` (1-based)."""
    return f"{SIM_PREFIX}{n:05d}"


def _segment(value: str, what: str) -> str:
    # Names end up as topic levels in the ACL: the topic module's rule for a level
    # (no wildcards, slashes or spaces, which would also break the ACL file's syntax).
    try:
        return topics._seg(value, what)
    except topics.TopicError as exc:
        raise BrokerError(str(exc)) from None


def _org_root(org: str) -> str:
    if org == ANY_ORG:
        return f"{topics.ROOT}/+"
    return f"{topics.ROOT}/{_segment(org, 'org')}"


def _staff_block(root: str, staff_id: str) -> str:
    return (
        f"user {staff_id}\n"
        f"topic read {root}/freeze\n"
        f"topic read {root}/message/current\n"
        f"topic read {root}/staff/{staff_id}/remind\n"
        f"topic write {root}/staff/{staff_id}/ack\n"
        f"topic write {root}/presence/staff/{staff_id}\n"
    )


def bridge_acl_block(channel: str, org: str = ANY_ORG) -> str:
    """The ACL lines for one channel's bridge user (``drill``: the drill injector)."""
    root, user = _org_root(org), bridge_user(channel)
    if channel == DRILL_CHANNEL:
        return (
            f"user {user}\n"
            f"topic write {root}/channel/+/in\n"
            f"topic write {root}/presence/bridge/{user}\n"
        )
    return (
        f"user {user}\n"
        f"topic read {root}/channel/{channel}/out\n"
        f"topic write {root}/channel/{channel}/in\n"
        f"topic write {root}/channel/{channel}/receipt\n"
        f"topic write {root}/presence/bridge/{user}\n"
    )


def _console_block(root: str, user: str) -> str:
    return (
        f"user {user}\n"
        f"topic read {root}/#\n"
        f"topic write {root}/freeze\n"
        f"topic write {root}/message/current\n"
        f"topic write {root}/channel/+/out\n"
        f"topic write {root}/staff/+/remind\n"
        f"topic write {root}/presence/console/+\n"
    )


def generate_acl(
    org: str,
    *,
    console: str | tuple[str, ...] = CONSOLE_USER,
    staff_ids: Iterable[str] = (),
    bridges: Iterable[str] = (),
    simulated: int = 0,
) -> str:
    """The mosquitto ACL for one organisation: one explicit block per user.

    ``console`` is the console's user (or several), ``staff_ids`` the staff terminals'
    users, ``bridges`` the channel ids whose bridges get a ``bridge-<id>`` user (the id
    ``drill`` is the drill injector), ``simulated`` the number of ``sim-NNNNN`` users.
    ``org`` is the slug every topic is confined to (:data:`ANY_ORG`: any org, roles
    still apart). Several orgs on one broker: concatenate one ACL per org; user names
    must then differ between the orgs (mosquitto has one user table).

    There are no ``pattern`` lines: mosquitto applies a pattern to every user, so a
    staff pattern would also let a bridge acknowledge a freeze as a "staff id" named
    ``bridge-sms``. Explicit blocks cost about 0.3 s of broker start-up per 5,000 users.

    Raises :class:`BrokerError` for a name that is not a valid topic segment, or one
    that two roles would share (every krise process must have a user of its own: the
    broker binds client ids, and so sessions, to user names).
    """
    root = _org_root(org)
    consoles = (console,) if isinstance(console, str) else tuple(console)
    staff = tuple(staff_ids)
    channels = tuple(dict.fromkeys(bridges))
    sims = tuple(sim_staff_id(i) for i in range(1, simulated + 1))
    seen: dict[str, str] = {}

    def claim(name: str, role: str) -> None:
        _segment(name, f"{role} user")
        if name in seen:
            raise BrokerError(f"user {name!r} would be both {seen[name]} and {role}")
        seen[name] = role

    for name in consoles:
        claim(name, "console")
    for sid in staff:
        if sid.startswith((BRIDGE_PREFIX, SIM_PREFIX)):
            raise BrokerError(
                f"staff id {sid!r}: {BRIDGE_PREFIX!r} and {SIM_PREFIX!r} names are reserved"
                " for bridges and simulated staff"
            )
        claim(sid, "staff")
    for channel in channels:
        claim(bridge_user(channel), "bridge")
    for name in consoles:
        if name.startswith((BRIDGE_PREFIX, SIM_PREFIX)):
            raise BrokerError(f"console user {name!r}: that prefix is reserved")
    for sid in sims:
        seen[sid] = "simulated staff"  # generated, cannot clash with the names above

    where = "any org" if org == ANY_ORG else f"org {org!r}"
    parts = [
        f"# krise ACL for {where}: generated by krise (bus/broker.py generate_acl).\n"
        "# One block per user and no `pattern` lines, so no role can borrow another's\n"
        "# rights. Regenerate rather than edit: `krise broker users --acl ...`.\n"
    ]
    parts += [_console_block(root, name) for name in consoles]
    parts += [_staff_block(root, sid) for sid in staff]
    parts += [bridge_acl_block(ch, org) for ch in channels]
    parts += [_staff_block(root, sid) for sid in sims]
    return "\n".join(parts)


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
            bridges={bridge_user(ch): secrets.token_urlsafe(18) for ch in bridges},
            simulated=simulated,
            sim_password=secrets.token_urlsafe(18) if simulated else "",
        )

    def sim_ids(self) -> list[str]:
        """The simulated staff ids."""
        return [sim_staff_id(i) for i in range(1, self.simulated + 1)]

    def channel_ids(self) -> list[str]:
        """The channel ids that have a bridge user."""
        return [name.removeprefix(BRIDGE_PREFIX) for name in self.bridges]

    def users(self) -> dict[str, str]:
        """All users, name -> password."""
        sims = dict.fromkeys(self.sim_ids(), self.sim_password)
        return {CONSOLE_USER: self.console, **self.staff, **self.bridges, **sims}

    def acl(self, org: str = ANY_ORG, *, extra_bridges: Iterable[str] = ()) -> str:
        """The ACL that gives each of these users its role (see :func:`generate_acl`)."""
        return generate_acl(
            org,
            staff_ids=tuple(self.staff),
            bridges=(*self.channel_ids(), *extra_bridges),
            simulated=self.simulated,
        )

    def to_json(self) -> dict[str, Any]:
        """Serialisable form."""
        return {
            "console": self.console,
            "staff": self.staff,
            "bridges": self.bridges,
            "simulated": self.simulated,
            "sim_password": self.sim_password,
        }


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
    everything else — anonymous off, client ids bound to users, persistence and how
    often it is saved, limits — is the real config, so a private broker keeps the
    promises the shipped one makes.
    """
    replaced = {
        "listener": f"listener {port} {host}",
        "password_file": f"password_file {password_file}",
        "acl_file": f"acl_file {acl_file}",
        "persistence_location": f"persistence_location {data_dir}/",
        "log_dest": f"log_dest file {data_dir / 'mosquitto.log'}",
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
        # 0600 password and ACL files; stay root for a private instance instead. (That
        # also keeps the parent-death signal: a change of user would clear it.)
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
    pid: int | None = None
    """The broker process (private mosquitto), for diagnostics and tests."""

    def to_json(self) -> dict[str, Any]:
        """Serialisable form."""
        return {
            "host": self.host,
            "port": self.port,
            "kind": str(self.kind),
            "credentials": None if self.credentials is None else self.credentials.to_json(),
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoint:
        """Parse :meth:`to_json` output."""
        creds = data.get("credentials")
        pid = data.get("pid")
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
            pid=None if pid is None else int(pid),
        )

    def login(self, role: str, member_id: str | None = None) -> tuple[str | None, str | None]:
        """User name and password for ``role`` (console / staff / bridge)."""
        if self.credentials is None:
            return None, None
        if role == "console":
            return CONSOLE_USER, self.credentials.console
        if role == "staff" and member_id is not None:
            if member_id.startswith(SIM_PREFIX) and member_id in self.credentials.sim_ids():
                return member_id, self.credentials.sim_password
            if member_id not in self.credentials.staff:
                known = ", ".join(sorted(self.credentials.staff)[:5])
                raise BrokerError(
                    f"staff id {member_id!r} is not a user of this broker (known: {known}, …)"
                )
            return member_id, self.credentials.staff[member_id]
        if role == "bridge" and member_id is not None:
            user = bridge_user(member_id)
            if user not in self.credentials.bridges:
                raise BrokerError(f"no bridge user {user!r} on this broker")
            return user, self.credentials.bridges[user]
        raise BrokerError(f"no credentials for role {role!r}")


def write_endpoint(path: Path, endpoint: Endpoint) -> None:
    """Publish the endpoint for local clients (atomically; 0600: it holds passwords)."""
    write_atomic(path, json.dumps(endpoint.to_json(), indent=2))


def read_endpoint(path: Path) -> Endpoint:
    """Read an endpoint written by :func:`write_endpoint`."""
    try:
        return Endpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise BrokerError(
            f"{path}: no running krise broker found (start `krise console` or `krise broker`,"
            " or configure [broker] host)"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BrokerError(f"{path}: unreadable broker endpoint ({exc})") from exc


@dataclass(frozen=True)
class LocalLogin:
    """Address and credentials of one participant on the local private broker."""

    host: str
    port: int
    username: str | None
    password: str | None


def local_login(path: Path, role: str, member_id: str | None = None) -> LocalLogin:
    """Read ``endpoint.json`` now: where the local broker is and who ``role`` logs in as.

    Made to be called before every connect attempt (``SessionConfig.resolve``): after a
    restart the broker may listen elsewhere and have new passwords.
    """
    endpoint = read_endpoint(path)
    user, password = endpoint.login(role, member_id)
    return LocalLogin(endpoint.host, endpoint.port, user, password)


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


class BrokerDirectory:
    """The directory a private broker runs from, owned by one krise process at a time.

    The owner holds an exclusive ``flock`` on ``broker.lock`` until it stops (the kernel
    drops it when the process dies, however it dies). So at a start, an
    ``endpoint.json`` still there is stale: its broker is gone (or an orphan mosquitto,
    which the start ends first).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.endpoint_file = self.path / ENDPOINT_FILE
        self._lock: IO[bytes] | None = None

    def claim(self) -> None:
        """Take the lock and clear what a dead owner left behind."""
        if self._lock is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / LOCK_FILE, "a+b")  # noqa: SIM115 - held until release()
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock, the checks below still help
            pass
        except OSError:
            fh.close()
            raise BrokerError(
                f"{self.path}: another krise broker runs from this directory"
                " (stop it, or use another --data-dir)"
            ) from None
        self._lock = fh
        self._end_orphan()
        with contextlib.suppress(FileNotFoundError):
            self.endpoint_file.unlink()
            log.info("removed a stale %s", self.endpoint_file)

    def release(self) -> None:
        """Withdraw the endpoint and let the next owner in."""
        for name in (ENDPOINT_FILE, PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        fh, self._lock = self._lock, None
        if fh is not None:
            fh.close()

    def stored_port(self) -> int | None:
        """The port the previous broker of this directory used, if any."""
        try:
            port = int((self.path / PORT_FILE).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return port if 0 < port < 65536 else None

    def choose_port(self, host: str) -> int:
        """The stored port when it is free, else a new free one."""
        stored = self.stored_port()
        if stored is not None and port_is_free(stored, host):
            return stored
        return free_port(host)

    def started(self, endpoint: Endpoint) -> None:
        """Record a broker that listens now: its port, its pid and its endpoint."""
        write_atomic(self.path / PORT_FILE, f"{endpoint.port}\n", mode=0o644)
        if endpoint.pid is not None:
            write_atomic(self.path / PID_FILE, f"{endpoint.pid}\n", mode=0o644)
        write_endpoint(self.endpoint_file, endpoint)

    def _end_orphan(self) -> None:
        # A mosquitto whose krise parent died without the parent-death signal (not
        # Linux, or a change of user) still runs on our data directory; two brokers on
        # one persistence file would overwrite each other's saves. End it.
        try:
            pid = int((self.path / PID_FILE).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return
        conf = str(self.path / "mosquitto.conf")
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return  # gone (or no /proc to tell whose it is: leave it alone)
        if conf.encode() not in cmdline or _is_zombie(pid):
            return
        log.warning("ending mosquitto %s left running from %s", pid, self.path)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(200):  # up to 10 s for its final save (rare: a blocking wait)
            if not _alive(pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended: it only waits to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux).

    ``prctl(PR_SET_PDEATHSIG)`` is kept across ``exec`` and fires however the parent
    dies, ``kill -9`` included; SIGTERM lets mosquitto save its persistence first. The
    kernel ties it to the *thread* that forked: start brokers from the event loop's
    thread (which outlives them), not from a short-lived worker thread. ``None`` where
    there is no such call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody will signal
            os._exit(1)

    return preexec


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
        org: str | None = None,
    ) -> None:
        """``org`` confines every user to that org's topics; ``None``: any org (roles
        still apart) for callers that do not know it. ``port``: fixed; ``None``: the one
        this directory used last time when it is free, else a free one."""
        self.directory = Path(directory)
        self.files = BrokerDirectory(self.directory)
        self.host = "127.0.0.1"
        self.port = port or self.files.choose_port(self.host)
        self._chosen_port = None if port else self.port
        self.credentials = credentials or Credentials.generate(simulated=EMBEDDED_SIMULATED_STAFF)
        self.extra_bridges = extra_bridges
        self.org = org or ANY_ORG
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process: subprocess.Popen[bytes] | None = None
        self.conf_path = self.directory / "mosquitto.conf"
        self.data_dir = self.directory / "data"

    def write_files(self) -> None:
        """Render the config, ACL and password file into :attr:`directory`."""
        src = broker_config_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        acl_path = self.directory / "acl"
        write_atomic(acl_path, self.credentials.acl(self.org, extra_bridges=self.extra_bridges))
        passwd = self.directory / "passwd"
        write_password_file(passwd, self.credentials.users())
        conf = render_mosquitto_conf(
            src / "mosquitto.conf",
            port=self.port,
            password_file=passwd,
            acl_file=acl_path,
            data_dir=self.data_dir,
            host=self.host,
        )
        write_atomic(self.conf_path, conf)

    async def start(self) -> Endpoint:
        """Start mosquitto, wait until it accepts connections, publish the endpoint."""
        self.files.claim()
        try:
            if not port_is_free(self.port, self.host):
                if self.port != self._chosen_port:  # asked for: a clear error, not a move
                    raise BrokerError(f"port {self.port} on {self.host} is in use")
                self.port = self._chosen_port = free_port(self.host)  # taken since
            self.write_files()
            await self._spawn()
        except BaseException:
            self.files.release()
            raise
        self.files.started(self.endpoint)
        log.info("private mosquitto listening on %s:%s", self.host, self.port)
        return self.endpoint

    async def _spawn(self) -> None:
        if shutil.which(self.binary) is None and not Path(self.binary).exists():
            raise BrokerError(f"mosquitto binary not found ({self.binary})")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a ctrl+c in the terminal is for krise, which stops it
            preexec_fn=die_with_parent(),  # only prctl: see die_with_parent
        )
        try:
            await wait_for_port(self.host, self.port)
            if self.process.poll() is not None:  # something else answered on that port
                raise BrokerError(f"mosquitto exited with status {self.process.returncode}")
        except BrokerError as exc:
            stderr = b""
            if self.process.poll() is not None and self.process.stderr is not None:
                stderr = self.process.stderr.read()
            await self._end_process(kill=False)
            logfile = self.data_dir / "mosquitto.log"
            tail = logfile.read_text(errors="replace")[-800:] if logfile.exists() else ""
            raise BrokerError(
                f"mosquitto did not start on port {self.port}: {exc}\n"
                f"{stderr.decode(errors='replace')}{tail}"
            ) from exc

    @property
    def endpoint(self) -> Endpoint:
        """Where it listens."""
        pid = self.process.pid if self.process is not None else None
        return Endpoint(self.host, self.port, BrokerKind.MOSQUITTO, self.credentials, pid)

    async def stop(self, *, kill: bool = False) -> None:
        """Stop mosquitto (SIGTERM saves persistence; ``kill`` skips that), withdraw the
        endpoint and release the directory."""
        try:
            await self._end_process(kill=kill)
        finally:
            self.files.release()

    async def _end_process(self, *, kill: bool) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
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

    def __init__(self, *, port: int | None = None, directory: Path | None = None) -> None:
        """``directory``: where the endpoint and the last port are kept (optional)."""
        self.host = "127.0.0.1"
        self.files = None if directory is None else BrokerDirectory(directory)
        stored = self.files.choose_port(self.host) if self.files is not None else None
        self.port = port or stored or free_port()
        self._broker: Any = None

    async def start(self) -> Endpoint:
        """Start the embedded broker."""
        from amqtt.broker import Broker

        if self.files is not None:
            self.files.claim()
        # amqtt logs every connection at INFO; keep the console's log readable.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        try:
            self._broker = Broker(config)
            await self._broker.start()
            await wait_for_port(self.host, self.port)
        except BaseException:
            if self.files is not None:
                self.files.release()
            raise
        if self.files is not None:
            self.files.started(self.endpoint)
        log.warning(WEAK_BROKER_WARNING)
        return self.endpoint

    @property
    def endpoint(self) -> Endpoint:
        """Where it listens (no credentials: amqtt runs anonymous here)."""
        return Endpoint(self.host, self.port, BrokerKind.AMQTT, None)

    async def stop(self, *, kill: bool = False) -> None:
        """Shut it down."""
        broker, self._broker = self._broker, None
        try:
            if broker is not None:
                with contextlib.suppress(Exception):
                    await broker.shutdown()
        finally:
            if self.files is not None:
                self.files.release()


EmbeddedBroker = MosquittoBroker | AmqttBroker


def choose_embedded(
    preference: str, directory: Path, *, bridges: tuple[str, ...] = (), org: str | None = None
) -> EmbeddedBroker:
    """Pick the embedded broker: a local mosquitto when installed, else amqtt.

    ``bridges`` are the org's channel ids: each gets a ``bridge-<id>`` user and its ACL
    block, so the in-process bridges (and `krise bridge ID`) can log in. ``org``
    confines every user to that org's topics (pass it; ``None`` allows any org).
    """
    if preference in ("auto", "mosquitto") and shutil.which("mosquitto"):
        extra = tuple(b for b in bridges if b not in STANDARD_BRIDGES)
        credentials = Credentials.generate(
            bridges=(*STANDARD_BRIDGES, *extra), simulated=EMBEDDED_SIMULATED_STAFF
        )
        return MosquittoBroker(directory, credentials=credentials, org=org)
    if preference == "mosquitto":
        raise BrokerError("broker.embedded = 'mosquitto' but no mosquitto binary is installed")
    return AmqttBroker(directory=directory)
