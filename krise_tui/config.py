"""Configuration: ``krise.toml`` (or the file named by ``KRISE_CONFIG``) plus ``KRISE_*``.

Precedence, highest first: keyword overrides (tests, CLI flags), environment variables
(``KRISE_ORG``, ``KRISE_BROKER__HOST``… with ``__`` for nesting), the TOML file, the
defaults here. No file is needed for a first run: with no broker configured krise
starts one itself (see :mod:`krise_tui.bus.broker`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "krise.toml"


def default_data_dir() -> Path:
    """Where journals, keys and the embedded broker's files live by default."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "krise"


class BridgeLogin(BaseModel):
    """The broker login of one channel's bridge run inside the console."""

    username: str | None = None
    """MQTT user name (default ``bridge-<channel id>``)."""
    password: SecretStr | None = None
    """MQTT password. Prefer ``password_file``."""
    password_file: Path | None = None
    """File holding the MQTT password (first line)."""

    def secret(self) -> str | None:
        """The password from ``password`` or ``password_file``."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        return None


class BrokerSettings(BaseModel):
    """How to reach the MQTT broker."""

    host: str | None = None
    """Broker host name. Unset: krise starts a broker itself (the embedded default)."""
    port: int = Field(default=1883, ge=1, le=65535)
    """Broker TCP port."""
    username: str | None = None
    """MQTT user name (the broker's ACL decides what it may publish)."""
    password: SecretStr | None = None
    """MQTT password. Prefer ``password_file`` or ``KRISE_BROKER__PASSWORD``."""
    password_file: Path | None = None
    """File holding the MQTT password (first line)."""
    client_id: str | None = None
    """Fixed MQTT client id (persistent sessions need a stable one). Default: role + org."""
    embedded: Literal["auto", "mosquitto", "amqtt"] = "auto"
    """Embedded broker kind when ``host`` is unset: ``auto`` prefers a local mosquitto."""
    keepalive: int = Field(default=30, ge=5, le=3600)
    """MQTT keep-alive in seconds (a dead connection is noticed within 1.5× this)."""
    bridges: dict[str, BridgeLogin] = Field(default_factory=dict)
    """Channel id -> the broker login of its bridge, for bridges run inside the console
    against a configured broker. Each bridge has a user of its own (client ids are bound
    to users): a channel with no login here gets no in-process bridge, and says so."""

    def secret(self) -> str | None:
        """The password from ``password`` or ``password_file``."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        return None


class Settings(BaseSettings):
    """All of krise's settings."""

    model_config = SettingsConfigDict(
        env_prefix="KRISE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    org: str = "eksempel"
    """Organisation slug used in bus topics (``krise/v1/{org}/…``)."""
    org_name: str = "Eksempel kommune"
    """The organisation's display name."""
    data_dir: Path = Field(default_factory=default_data_dir)
    """Journal, keys and embedded-broker files live here unless set one by one."""
    journal: Path | None = None
    """The journal's SQLite file. Default: ``{data_dir}/journal.sqlite3``."""
    keys_dir: Path | None = None
    """Where ``console.key``/``console.pub`` live. Default: ``{data_dir}/keys``."""
    public_key: Path | None = None
    """Staff terminals and bridges: the console's public key (``{keys_dir}/console.pub``)."""
    operator: str | None = None
    """Who is at this console: an operator id from the org file, journaled as the actor of
    every action. An id the org file does not know is an error at start. Unset: the
    console asks who signs in."""
    incident_title: str = "Hendelse"
    """Title used when the console opens a new incident on an empty journal."""
    lang: Literal["nb", "en"] = "nb"
    """User-interface language."""
    org_file: Path | None = None
    """The organisation file (YAML): operators, staff groups, channels, languages. When
    set, its slug and name replace ``org`` and ``org_name``."""
    playbook: Path | None = None
    """The playbook (YAML) the console follows; reloaded when the file changes."""
    bridges_in_process: bool = True
    """Run every channel's bridge inside the console (the default); set false when they
    run as their own processes (`krise bridge CHANNEL`) near the internet."""
    strict_roster: bool = True
    """Reject acknowledgements from staff ids the org file does not list. Embedded
    brokers (demos, drills) relax this so simulated terminals count."""
    journal_head_copies: list[Path] = Field(default_factory=list)
    """More places to keep the journal's signed head (another disk, a network share), so
    rows cut off the end are caught even if the head beside the journal is removed too."""
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    """The MQTT broker."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword overrides, then env vars, then the TOML file."""
        toml_path = Path(os.environ.get("KRISE_CONFIG", DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def journal_path(self) -> Path:
        """Resolved journal path."""
        return self.journal or self.data_dir / "journal.sqlite3"

    @property
    def keys_path(self) -> Path:
        """Resolved key directory."""
        return self.keys_dir or self.data_dir / "keys"

    @property
    def public_key_path(self) -> Path:
        """Resolved public-key path."""
        return self.public_key or self.keys_path / "console.pub"

    @property
    def broker_dir(self) -> Path:
        """Files of the embedded broker (config, users, persistence, endpoint)."""
        return self.data_dir / "broker"


class ConfigFileError(ValueError):
    """The configuration file cannot be read or is not TOML (names the file and where)."""


def check_config_file(path: Path) -> None:
    """Raise :class:`ConfigFileError` when ``path`` exists and is not readable TOML.

    pydantic-settings let ``tomllib``'s error out as a traceback without the file's name.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory, not a configuration file") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text (at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None


def load_settings(**overrides: Any) -> Settings:
    """Load settings from file and environment, with ``overrides`` on top."""
    config_path = os.environ.get("KRISE_CONFIG")
    if config_path and not Path(config_path).exists():
        raise FileNotFoundError(f"KRISE_CONFIG names {config_path}, which does not exist")
    check_config_file(Path(config_path or DEFAULT_CONFIG_FILE))
    return Settings(**overrides)
