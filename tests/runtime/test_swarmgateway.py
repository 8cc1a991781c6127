"""The gateway's pure parts: its firewall, the route-overlap check, finding its interface."""

from __future__ import annotations

from labspace.runtime.swarmgateway import gateway_rules, interface_with, overlapping_route


def test_the_gateway_forwards_only_what_this_host_opens() -> None:
    rules = gateway_rules("eth1", "172.19.0.1").splitlines()
    assert ":INPUT DROP [0:0]" in rules and ":FORWARD DROP [0:0]" in rules
    forward = [r for r in rules if r.startswith("-A FORWARD")]
    assert forward == [
        "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A FORWARD -i eth1 -s 172.19.0.1/32 ! -o eth1 -j ACCEPT",
    ]  # nothing a workspace sends is forwarded, except answers
    assert "-A POSTROUTING -s 172.19.0.1/32 ! -o eth1 -j MASQUERADE" in rules
    assert rules.count("COMMIT") == 2


ROUTES = [
    {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
    {"dst": "192.0.2.0/24", "dev": "eth0"},
    {"dst": "10.0.0.0/16", "dev": "ens5"},
    {"dst": "10.9.1.0/24", "gateway": "172.19.0.2", "dev": "br-0123456789ab"},
]


def test_an_overlay_subnet_never_shadows_a_route_of_the_host() -> None:
    assert overlapping_route("10.0.1.0/24", ROUTES, "br-0123456789ab") == "10.0.0.0/16 dev ens5"
    assert overlapping_route("10.0.0.0/8", ROUTES, "br-0123456789ab") == "10.0.0.0/16 dev ens5"
    # The default route and our own routes (through the gateway's bridge) are no clash.
    assert overlapping_route("10.9.1.0/24", ROUTES, "br-0123456789ab") is None
    assert overlapping_route("10.10.0.0/24", ROUTES, "br-0123456789ab") is None


def test_the_gateways_interface_is_found_by_its_address() -> None:
    links = [{"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}]},
             {"ifname": "eth0", "addr_info": [{"local": "10.0.1.4"}]},
             {"ifname": "eth1", "addr_info": [{"local": "172.19.0.2"}]}]
    assert interface_with("172.19.0.2", links) == "eth1"
    assert interface_with("172.19.0.9", links) is None
