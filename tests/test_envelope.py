"""Signed envelopes: accepted when valid; altered, wrong key, old seq rejected with a reason."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from krise_tui.bus.envelope import (
    KeyFileError,
    Signer,
    Verifier,
    VerifyStatus,
    load_private_key,
    load_public_key,
)
from krise_tui.cli import main

NOW = datetime(2026, 11, 27, 14, 3, tzinfo=UTC)


def sign(signer: Signer, seq: int, text: str = "Rv73 er stengt", type: str = "freeze") -> str:
    return signer.sign(
        type=type,
        org="test",
        seq=seq,
        body={"text": text, "active": True},
        issued_at=NOW,
        envelope_id=f"{type}-{seq}-{text}",
    ).to_json()


def test_valid_envelope_is_accepted(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    result = verifier.check(sign(signer, 1))
    assert result.status is VerifyStatus.OK
    assert result.envelope is not None
    assert result.envelope.body["text"] == "Rv73 er stengt"


def test_altered_body_is_rejected(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    data = json.loads(sign(signer, 1))
    data["body"]["active"] = False  # a forged lift
    result = verifier.check(json.dumps(data))
    assert result.status is VerifyStatus.REJECTED
    assert result.reason == "invalid signature"


def test_altered_seq_is_rejected(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    data = json.loads(sign(signer, 1))
    data["seq"] = 99
    assert verifier.check(json.dumps(data)).reason == "invalid signature"


def test_wrong_key_is_rejected(signer: Signer) -> None:
    other = Signer.generate()
    verifier = Verifier([signer.public_key], org="test")
    result = verifier.check(sign(other, 1))
    assert result.status is VerifyStatus.REJECTED
    assert "unknown signing key" in result.reason


def test_wrong_key_claiming_the_right_key_id_is_rejected(signer: Signer) -> None:
    other = Signer.generate()
    data = json.loads(sign(other, 1))
    data["key_id"] = signer.key_id
    result = Verifier([signer.public_key], org="test").check(json.dumps(data))
    assert result.reason == "invalid signature"


def test_old_seq_is_rejected_as_replay(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    first, second = sign(signer, 1, "frys"), sign(signer, 2, "opphev")
    assert verifier.check(first).ok
    assert verifier.check(second).ok
    replay = verifier.check(first)
    assert replay.status is VerifyStatus.REJECTED
    assert "replayed or stale seq 1" in replay.reason


def test_same_envelope_again_is_a_harmless_duplicate(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    env = sign(signer, 5)
    assert verifier.check(env).ok
    assert verifier.check(env).status is VerifyStatus.DUPLICATE


def test_same_seq_different_content_is_rejected(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    assert verifier.check(sign(signer, 5, "a")).ok
    assert verifier.check(sign(signer, 5, "b")).status is VerifyStatus.REJECTED


def test_streams_have_independent_seqs(signer: Signer) -> None:
    verifier = Verifier([signer.public_key], org="test")
    assert verifier.check(sign(signer, 7, type="freeze")).ok
    assert verifier.check(sign(signer, 1, type="message.current")).ok


def test_other_org_is_rejected(signer: Signer) -> None:
    env = signer.sign(
        type="freeze", org="naboby", seq=1, body={}, issued_at=NOW, envelope_id="e1"
    ).to_json()
    result = Verifier([signer.public_key], org="test").check(env)
    assert "org 'naboby'" in result.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not a valid envelope"),
        (b"\xff\xfe\x00", "not a valid envelope"),
        (b'{"v": 1}', "not a valid envelope: id"),
        (b"x" * 300_000, "payload too large"),
    ],
)
def test_garbage_is_rejected_with_a_reason(signer: Signer, payload: bytes, reason: str) -> None:
    result = Verifier([signer.public_key]).check(payload)
    assert result.status is VerifyStatus.REJECTED
    assert reason in result.reason


def test_keys_init_writes_a_private_key_only_the_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 0
    priv, pub = tmp_path / "k" / "console.key", tmp_path / "k" / "console.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    signer = Signer(load_private_key(priv))
    verifier = Verifier([load_public_key(pub)])  # verifiers need only the public key
    assert verifier.check(sign(signer, 1)).ok
    assert "public key" in capsys.readouterr().out
    # A second init must not silently replace the key staff terminals trust.
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 1


def test_a_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 0
    priv = tmp_path / "console.key"
    priv.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_private_key(priv)


def test_signing_is_deterministic(signer: Signer) -> None:
    """The outbox signs again on every retry: the very same bytes each time."""
    assert sign(signer, 3) == sign(signer, 3)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", "1"),  # a string where an integer is signed
        ("v", True),  # a boolean for the version
        ("issued_at", int(NOW.timestamp())),  # a Unix time for the ISO time
        ("seq", 1.0),
    ],
)
def test_a_re_typed_field_is_refused_even_if_its_value_is_equal(
    signer: Signer, field: str, value: object
) -> None:
    """Malleability: verification is over what was received, parsed strictly."""
    data = json.loads(sign(signer, 1))
    data[field] = value
    result = Verifier([signer.public_key], org="test").check(json.dumps(data))
    assert result.status is VerifyStatus.REJECTED


def test_the_signature_covers_the_bytes_received_not_a_re_serialisation(signer: Signer) -> None:
    data = json.loads(sign(signer, 1))
    data["body"]["extra"] = None  # a field a lax model might drop before re-serialising
    assert Verifier([signer.public_key], org="test").check(json.dumps(data)).reason == (
        "invalid signature"
    )
    spaced = json.dumps(json.loads(sign(signer, 2)), indent=4)  # layout is not content
    assert Verifier([signer.public_key], org="test").check(spaced).ok
