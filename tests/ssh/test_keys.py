"""Public keys as users paste them: what is accepted, what is refused and why; fingerprints
match ssh-keygen's. Keys are made by the real ssh-keygen."""

from __future__ import annotations

import base64
import struct
import subprocess
from pathlib import Path

import pytest

from labspace.errors import InvalidInput
from labspace.ssh import parse_public_key


def keygen(tmp_path: Path, kind: str, bits: int | None = None, comment: str = "ada@laptop"
           ) -> str:
    path = tmp_path / f"id_{kind}_{bits}"
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if bits:
        args += ["-b", str(bits)]
    subprocess.run(args, check=True, capture_output=True)
    return Path(f"{path}.pub").read_text()


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("ecdsa", 256), ("ecdsa", 521),
                                            ("rsa", 3072)])
def test_real_keys_are_accepted_with_ssh_keygens_fingerprint(tmp_path: Path, kind: str,
                                                             bits: int | None) -> None:
    line = keygen(tmp_path, kind, bits)
    key = parse_public_key(line)
    listed = subprocess.run(["ssh-keygen", "-lf", "-"], input=line, text=True,
                            capture_output=True, check=True).stdout.split()
    assert key.fingerprint == listed[1]
    assert key.comment == "ada@laptop"
    assert key.openssh == " ".join(line.split()[:2])  # no comment, no options


def test_a_short_rsa_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="at least 2048 bits; this one has 1024"):
        parse_public_key(keygen(tmp_path, "rsa", 1024))


@pytest.mark.parametrize(("text", "says"), [
    ("", "exactly one public key"),
    ("ssh-ed25519 AAAA\nssh-ed25519 BBBB", "exactly one public key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    ("ssh-dss AAAAB3NzaC1kc3M=", "DSA keys are not accepted"),
    ('command="rm -rf ~" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5', "without authorized_keys options"),
    ("no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "without authorized_keys options"),
    ("ssh-ed25519 not*base64", "base64 part is damaged"),
    ("banana AAAA", "not a supported public key type"),
    ("x" * 20000, "20000 characters"),
])
def test_malformed_or_dangerous_text_is_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_public_key(text)


def test_a_key_labelled_as_another_type_is_refused(tmp_path: Path) -> None:
    rsa_blob = keygen(tmp_path, "rsa", 2048).split()[1]
    with pytest.raises(InvalidInput, match="not a ssh-ed25519 key"):
        parse_public_key(f"ssh-ed25519 {rsa_blob}")


def test_a_truncated_key_is_refused(tmp_path: Path) -> None:
    blob = base64.b64decode(keygen(tmp_path, "ed25519").split()[1])
    with pytest.raises(InvalidInput):
        parse_public_key("ssh-ed25519 " + base64.b64encode(blob[:-5]).decode())


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_security_keys_are_checked_by_their_structure() -> None:
    kind = b"sk-ssh-ed25519@openssh.com"
    good = _ssh_string(kind) + _ssh_string(b"\x01" * 32) + _ssh_string(b"ssh:")
    key = parse_public_key(f"{kind.decode()} {base64.b64encode(good).decode()} yubikey")
    assert key.kind == kind.decode() and key.fingerprint.startswith("SHA256:")
    short = _ssh_string(kind) + _ssh_string(b"\x01" * 32)
    with pytest.raises(InvalidInput):
        parse_public_key(f"{kind.decode()} {base64.b64encode(short).decode()}")
