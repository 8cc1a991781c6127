"""The shared folders on the host: a group's is root:gid 2770 and repaired at the top only;
names that are not safe path components, and symbolic links, are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labspace.errors import InvalidInput
from labspace.storage import ensure_group_folder, ensure_shared_folder


async def test_a_group_folder_is_the_groups_setgid_and_closed_to_others(tmp_path: Path) -> None:
    folder = await ensure_group_folder(tmp_path / "groups", "phd", 6001)
    found = folder.stat()
    assert (found.st_uid, found.st_gid, found.st_mode & 0o7777) == (0, 6001, 0o2770)
    inside = folder / "data"
    inside.write_text("results")
    os.chown(inside, 54321, 6001)
    os.chmod(folder, 0o777)
    await ensure_group_folder(tmp_path / "groups", "phd", 6001)  # repaired, contents kept
    assert folder.stat().st_mode & 0o7777 == 0o2770
    assert (inside.stat().st_uid, inside.read_text()) == (54321, "results")
    assert (tmp_path / "groups").stat().st_mode & 0o777 == 0o711


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "Domain Users", "", "x" * 64])
async def test_a_group_name_that_is_not_a_safe_folder_name_is_refused(
        tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        await ensure_group_folder(tmp_path, name, 6001)


async def test_symbolic_links_are_never_followed(tmp_path: Path) -> None:
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "phd").symlink_to("/etc")
    with pytest.raises(InvalidInput):
        await ensure_group_folder(tmp_path / "groups", "phd", 6001)
    (tmp_path / "shared").symlink_to("/etc")
    with pytest.raises(InvalidInput):
        await ensure_shared_folder(tmp_path / "shared")


async def test_the_labs_folder_is_made_sticky_once_and_then_left_as_the_admin_set_it(
        tmp_path: Path) -> None:
    shared = await ensure_shared_folder(tmp_path / "shared")
    assert shared.stat().st_mode & 0o7777 == 0o1777
    os.chmod(shared, 0o755)
    await ensure_shared_folder(shared)
    assert shared.stat().st_mode & 0o7777 == 0o755
