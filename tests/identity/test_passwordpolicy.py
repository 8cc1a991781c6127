"""The password policy for passwords people choose (identity/passwordpolicy.py), and where
it applies: UserService's create and set_password, never generated passwords."""

from __future__ import annotations

import pytest

from labspace.config import Settings
from labspace.errors import InvalidInput
from labspace.identity.passwordpolicy import check_password, common_passwords
from labspace.identity.passwords import generate_password
from labspace.identity.users import UserService
from labspace.state.db import Database


@pytest.mark.parametrize(("password", "why"), [
    ("short-1", "at least 10 characters"),
    ("x" * 201, "at most 200 characters"),
    ("my-AdaLovelace-99", "may not contain the user name"),
    ("aaaaaaaaaaaa", "one character or a short pattern repeated"),
    ("abcabcabcabc", "short pattern repeated"),
    ("1212121212", "short pattern repeated"),
    ("abcdefghijk", "a run like abcdef"),
    ("9876543210", "a run like abcdef"),
    ("qwertyuiop", "a run like abcdef"),
    ("0123456789", "a run like abcdef"),
    ("starwars12", "one of the most common"),
    ("Sunshine2024!", "one of the most common"),
    ("PASSWORD1234", "one of the most common"),
])
def test_weak_passwords_are_refused_with_the_reason(password: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_password(password, user_name="adalovelace")


@pytest.mark.parametrize("password", [
    "correct horse battery", "tidal-quartz-9035", "Zw7#kq2!Lp0m", "grace likes lace 1843",
])
def test_good_passwords_pass(password: str) -> None:
    check_password(password, user_name="ada")


def test_a_name_of_three_characters_counts_and_shorter_ones_do_not() -> None:
    with pytest.raises(InvalidInput, match="user name"):
        check_password("ada likes lace 1843", user_name="ada")
    check_password("jo-walks-the-dog", user_name="jo")


def test_the_minimum_length_is_configurable_but_never_below_8() -> None:
    check_password("tidal-q-9", user_name="ada", min_length=8)
    with pytest.raises(InvalidInput, match="at least 12"):
        check_password("tidal-quart", user_name="ada", min_length=12)
    with pytest.raises(InvalidInput, match="at least 8"):
        check_password("tidal-q", user_name="ada", min_length=4)
    assert Settings(password_min_length=12).password_min_length == 12
    with pytest.raises(ValueError, match="password_min_length"):
        Settings(password_min_length=6)


def test_the_shipped_list_has_the_most_common_passwords() -> None:
    common = common_passwords()
    assert len(common) == 1000 and {"password", "12345678", "iloveyou"} <= common
    assert all(len(word) >= 8 for word in common)


async def test_the_accounts_follow_the_policy_but_generated_passwords_pass(
        db: Database) -> None:
    users = UserService(db, password_min_length=12)
    with pytest.raises(InvalidInput, match="at least 12"):
        await users.create("grace", password="tidal-quart")
    with pytest.raises(InvalidInput, match="user name"):
        await users.create("grace", password="grace-hopper-1906")
    await users.create("grace", password="cobol-and-bugs-1947")
    with pytest.raises(InvalidInput, match="most common"):
        await users.set_password("grace", "iloveyou2024!")
    await users.set_password("grace", "nanoseconds-of-wire")
    # A generated one-time password (19 characters, random) is not a person's choice.
    await users.set_password("grace", generate_password(), generated=True)
    await users.create("linus", password="short-1", generated=True)
