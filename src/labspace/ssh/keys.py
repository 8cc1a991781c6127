"""Public keys as users paste them: checked, normalised, fingerprinted.

Only "type base64" is ever kept or written to an authorized_keys file: a pasted line may
carry options (``command="..."``, ``from=``) or a second line, and neither may reach sshd.
The comment becomes the key's name in labspace, never part of the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from labspace.errors import InvalidInput

MAX_TEXT = 16384  # a 16384-bit RSA key is about 2.8 KB; anything far bigger is not a key
MIN_RSA_BITS = 2048
# Security keys (FIDO): cryptography cannot load them, their structure is checked here.
SECURITY_KEY_TYPES = {
    "sk-ssh-ed25519@openssh.com": 3,  # type, public key, application
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,  # type, curve, point, application
}
KEY_TYPES = (
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-rsa", *SECURITY_KEY_TYPES,
)


@dataclass(frozen=True)
class PublicKey:
    kind: str
    blob: bytes
    comment: str = ""

    @property
    def openssh(self) -> str:
        """The key as an authorized_keys line, without options or comment."""
        return f"{self.kind} {base64.b64encode(self.blob).decode()}"

    @property
    def fingerprint(self) -> str:
        """As ``ssh-keygen -l`` prints it: SHA256:<unpadded base64>."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"


def parse_public_key(text: str) -> PublicKey:
    """A public key from one line of an ``id_*.pub`` file; InvalidInput says what is wrong."""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"that is not a public key: it has {len(text)} characters")
    line = text.strip()
    if not line or "\n" in line or "\r" in line:
        raise InvalidInput("paste exactly one public key: the single line of an id_*.pub file")
    if "PRIVATE KEY" in line:
        raise InvalidInput("that is a private key: never share it; paste the .pub file instead")
    kind, _, rest = line.partition(" ")
    encoded, _, comment = rest.strip().partition(" ")
    if kind not in KEY_TYPES:
        raise InvalidInput(_unsupported(kind))
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the key's base64 part is damaged (copy the whole line)") from None
    fields = _ssh_strings(blob)
    if not fields or fields[0] != kind.encode():
        raise InvalidInput(f"the key's data is not a {kind} key")
    if kind in SECURITY_KEY_TYPES:
        if len(fields) != SECURITY_KEY_TYPES[kind]:
            raise InvalidInput(f"the key's data is not a {kind} key")
    else:
        _check_math(kind, f"{kind} {encoded}")
    return PublicKey(kind, blob, comment.strip()[:100])


def _unsupported(kind: str) -> str:
    if kind == "ssh-dss":
        return "DSA keys are not accepted (OpenSSH turned them off); make an ed25519 key"
    if kind.startswith(("no-", "command=", "from=", "environment=", "restrict", "permit")):
        return "paste the key without authorized_keys options (they are not accepted)"
    return (f"not a supported public key type: {kind[:40]!r}; use one of "
            f"{', '.join(KEY_TYPES)} (ssh-keygen -t ed25519 makes one)")


def _check_math(kind: str, text: str) -> None:
    try:
        key = load_ssh_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the {kind} key is not valid: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidInput(f"RSA keys need at least {MIN_RSA_BITS} bits; this one has "
                           f"{key.key_size} (make an ed25519 key)")


def _ssh_strings(blob: bytes) -> list[bytes] | None:
    """The wire format's length-prefixed strings (RFC 4251), or None when it is not one."""
    fields, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            return None
        (size,) = struct.unpack(">I", blob[at:at + 4])
        at += 4
        if at + size > len(blob):
            return None
        fields.append(blob[at:at + size])
        at += size
    return fields
