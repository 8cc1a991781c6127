"""An attendee's credentials: a password people read off a card and type, a login link, and
the sealing that lets an instructor print the same card again later.

The password is six consonant-vowel syllables in three dashed groups ("bafo-kemi-tuza"):
easy to read aloud and to type on a phone, no look-alike letters (no l, o, i/1 or 0 pairs),
about 37 bits. That is plenty for an account that lives days and sits behind the login
throttle (a guesser gets a handful of tries per minute); a lab's own accounts use the
policy of local passwords instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CONSONANTS = "bdfghjkmnprstvz"  # no c/q/x/y/w/l: ambiguous when read aloud or printed
VOWELS = "aeiu"  # no o: it reads as 0 on a card
SYLLABLES_PER_GROUP, GROUPS = 2, 3


def readable_password() -> str:
    def syllable() -> str:
        return secrets.choice(CONSONANTS) + secrets.choice(VOWELS)

    return "-".join("".join(syllable() for _ in range(SYLLABLES_PER_GROUP))
                    for _ in range(GROUPS))


def new_link_token() -> str:
    """The secret of a one-click login link (192 bits)."""
    return secrets.token_urlsafe(24)


def link_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SeatSecret:
    password: str
    link_token: str


class Sealer:
    """Encrypts the seat secrets with a key derived from the hub's signing key (Fernet:
    AES-CBC with an HMAC): a stolen database alone prints no cards."""

    def __init__(self, signing_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"labspace workshop seats").derive(signing_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, secret: SeatSecret) -> str:
        plain = json.dumps({"password": secret.password, "link": secret.link_token})
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> SeatSecret | None:
        """None when the key changed since (the cards must be reset to be printed again)."""
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return None
        return SeatSecret(password=data["password"], link_token=data["link"])
