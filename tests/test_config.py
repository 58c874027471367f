"""Configuration: defaults need no file; TOML file, then env vars, then overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from krise_tui.cli import main
from krise_tui.config import Settings, load_settings


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.org == "eksempel"
    assert settings.broker.host is None  # → the embedded broker
    assert settings.journal_path == tmp_path / "xdg" / "krise" / "journal.sqlite3"


def test_toml_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "krise.toml"
    cfg.write_text(
        'org = "hattfjelldal"\norg_name = "Hattfjelldal kommune"\n'
        '[broker]\nhost = "mqtt.example"\nport = 8883\nusername = "console"\n',
        encoding="utf-8",
    )
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    monkeypatch.setenv("KRISE_CONFIG", str(cfg))
    monkeypatch.setenv("KRISE_BROKER__PORT", "1884")
    monkeypatch.setenv("KRISE_BROKER__PASSWORD_FILE", str(secret))
    settings = load_settings(operator="Kari Nordmann")
    assert settings.org == "hattfjelldal"
    assert settings.broker.host == "mqtt.example"
    assert settings.broker.port == 1884  # env beats the file
    assert settings.broker.secret() == "s3cret"
    assert settings.operator == "Kari Nordmann"


def test_unknown_keys_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "krise.toml"
    cfg.write_text('orgg = "typo"\n', encoding="utf-8")
    monkeypatch.setenv("KRISE_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match="orgg"):
        Settings()


def test_missing_config_file_named_by_env_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KRISE_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 1
    assert "KRISE_CONFIG names" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b'org = "hattfjelldal"\n[broker\nport = 1883\n', "not valid TOML: "),
        (b"org_file = [\n", "not valid TOML: Invalid value (at end of document)"),
        ('org_name = "Bø kommune"\n'.encode("latin-1"), "not UTF-8 text (at byte 13)"),
    ],
)
def test_a_broken_config_file_is_named_not_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    said: str,
) -> None:
    """tomllib's error came out as a traceback that named neither the file nor krise."""
    cfg = tmp_path / "krise.toml"
    cfg.write_bytes(content)
    monkeypatch.setenv("KRISE_CONFIG", str(cfg))
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"krise: invalid configuration: {cfg}: ") and said in err
    assert "Traceback" not in err and not (tmp_path / "k").exists()


def test_a_wrong_setting_is_one_line_naming_it_and_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KRISE_BROKER__PORT", "abc")
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 1
    err = capsys.readouterr().err
    assert err == (
        "krise: invalid configuration:\n  broker.port: Input should be a valid integer, "
        "unable to parse string as an integer (given: 'abc')\n"
    )


def test_cli_lists_subcommands_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for sub in ("console", "staff", "broker", "keys", "journal"):
        assert sub in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "krise 0.1.0" in capsys.readouterr().out
