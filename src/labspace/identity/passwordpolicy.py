"""The policy for passwords people choose for local accounts.

A password is refused when it is short (``password_min_length``, default 10), longer than the
forms take (200), contains the user's name, is one character repeated, a short pattern
repeated or a run along the alphabet, the digits or a keyboard row, or is one of the most
common passwords (also with digits and symbols appended: "password123!").

Why a list and rules rather than zxcvbn's score: zxcvbn is a good estimator, but it is an
extra dependency with large data tables for what a lab hub needs, its scores change between
releases (a password accepted today refused after an upgrade), and its feedback is hard to
turn into one stable sentence. The rules here are those NIST SP 800-63B asks for (a minimum
length, no composition rules, a check against known-compromised and context-specific words),
and the list is derived from zxcvbn's own: the 1000 most frequent passwords of at least 8
characters in its "passwords" frequency list (MIT licence, from Xato's 10 million passwords),
shipped as common-passwords.txt. Shorter ones are refused by the length already.

Generated passwords (identity/passwords.generate_password, workshop seats) are random and
never pass through here: callers pass ``generated=True`` to UserService.
"""

from __future__ import annotations

import functools
import itertools
from importlib import resources

from labspace.errors import InvalidInput

DEFAULT_MIN_LENGTH = 10
LOWEST_MIN_LENGTH = 8  # password_min_length may not go below this
MAX_LENGTH = 200  # the API's and the forms' bound
_SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiop", "asdfghjkl",
              "zxcvbnm", "qwertzuiop", "azertyuiop", "1qaz2wsx3edc4rfv5tgb6yhn")
_TRAILING = "0123456789!@#$%^&*()-_=+.,?~ "


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files("labspace.identity").joinpath("common-passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_password(password: str, *, user_name: str,
                   min_length: int = DEFAULT_MIN_LENGTH) -> None:
    """Refuse (InvalidInput, with a sentence that says why) a weak password for ``user_name``."""
    min_length = max(min_length, LOWEST_MIN_LENGTH)
    if len(password) < min_length:
        raise InvalidInput(f"a password needs at least {min_length} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password may have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if len(user_name) >= 3 and user_name.lower() in lowered:
        raise InvalidInput("a password may not contain the user name")
    if _is_pattern(lowered):
        raise InvalidInput("a password may not be one character or a short pattern repeated, "
                           "nor a run like abcdef, 123456 or qwerty")
    stem = lowered.rstrip(_TRAILING)
    if lowered in common_passwords() or stem in common_passwords():
        raise InvalidInput("this password is one of the most common ones: choose another "
                           "(a few unrelated words make a good one)")


def _is_pattern(lowered: str) -> bool:
    # One character, or a block of up to 4 repeated: "aaaaaaaaaa", "abcabcabcabc", "12121212".
    for size in range(1, 5):
        block = lowered[:size]
        if len(lowered) >= 2 * size and (block * (len(lowered) // size + 1)).startswith(lowered):
            return True
    # A run, forwards or backwards, along the alphabet, the digits or a keyboard row.
    for run in _SEQUENCES:
        if lowered in run or lowered in run[::-1]:
            return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(lowered)}
    return steps in ({1}, {-1})
