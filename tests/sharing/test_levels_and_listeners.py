"""Share levels' rules and the socket-table parser, on their own (no containers)."""

from __future__ import annotations

import pytest

from labspace.origins import Origins
from labspace.sharing.levels import ShareLevel, admits, capped, level_of
from labspace.sharing.listening import MAX_PORTS, Listener, parse_listeners

# /proc/net/tcp and /proc/net/tcp6 as a workspace shows them (recorded from a real one):
# 8050 on 0.0.0.0, 8051 on 127.0.0.1, 8888 on :: (IPv6, all), 9000 on ::1 only, 5000 on
# both 127.0.0.1 and 0.0.0.0; one established connection, and a socket in TIME_WAIT.
PROC = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F72 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1
   1: 0100007F:1F73 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2
   2: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3
   3: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4
   4: 050012AC:22B8 010012AC:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 5
   5: 050012AC:1F90 010012AC:D2F1 06 00000000:00000000 00:00000000 00000000     0        0 0
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:22B8 00000000000000000000000000000000:0000 0A 0 0
   1: 00000000000000000000000001000000:2328 00000000000000000000000000000000:0000 0A 0 0
   2: 0000000000000000FFFF00000100007F:2329 00000000000000000000000000000000:0000 0A 0 0
cat: /proc/net/tcp6: No such file or directory
garbage line : : :
"""


def test_listening_ports_are_read_and_loopback_ones_marked() -> None:
    assert parse_listeners(PROC) == [
        Listener(5000, False), Listener(8050, False), Listener(8051, True),
        Listener(8888, False), Listener(9000, True), Listener(9001, True)]


def test_a_flood_of_sockets_is_cut_to_a_readable_list() -> None:
    lines = "".join(f"{i}: 00000000:{port:04X} 00000000:0000 0A\n"
                    for i, port in enumerate(range(1000, 2000)))
    assert len(parse_listeners(lines)) == MAX_PORTS


@pytest.mark.parametrize(("level", "visitor", "admitted"), [
    ("private", "ada", True), ("private", "bob", False), ("private", None, False),
    ("authenticated", "bob", True), ("authenticated", None, False),
    ("public", None, True), ("public", "bob", True),
    ("world", "bob", False), ("", "bob", False),  # unknown or missing: private
])
def test_each_level_admits(level: str, visitor: str | None, admitted: bool) -> None:
    assert admits(level_of(level), visitor, "ada") is admitted


def test_a_cap_lowers_only_wider_levels() -> None:
    assert capped(ShareLevel.PUBLIC, ShareLevel.AUTHENTICATED) is ShareLevel.AUTHENTICATED
    assert capped(ShareLevel.PRIVATE, ShareLevel.PUBLIC) is ShareLevel.PRIVATE
    assert capped(ShareLevel.AUTHENTICATED, ShareLevel.PRIVATE) is ShareLevel.PRIVATE


def test_a_shared_ports_host_is_one_label_and_splits_back() -> None:
    origins = Origins("https://lab.example.org", "apps.example.org")
    host = origins.share_host("ada", "analysis", 8050)
    assert host == "8050-analysis--ada.apps.example.org"
    assert origins.share_of(host.upper() + ":443") == ("ada", "analysis", 8050)
    assert origins.workspace_of(host) is None  # never taken for a workspace's own host
    assert origins.share_of("analysis--ada.apps.example.org") is None
    assert origins.share_origin("ada", "analysis", 1) == "https://1-analysis--ada.apps.example.org"
    with pytest.raises(ValueError, match="63"):
        origins.share_host("o" * 30, "w" * 30, 8050)
    with pytest.raises(ValueError):
        Origins("http://localhost:8000").share_host("ada", "analysis", 8050)
