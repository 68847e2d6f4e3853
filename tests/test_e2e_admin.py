"""The admin API through the ``rmqproxy`` command against the real server: changing a group's retry
policy one option at a time, deleting topics and groups, changing retention, and ``--auto-create``
with the real Python client."""

from __future__ import annotations

from tests.serverproc import ServerProcess


def _exponential(server: ServerProcess, group: str) -> dict[str, object]:
    policy = server.cli_json("group", "describe", group)["group"]["retry_policy"]
    assert set(policy) == {"exponential"}, policy
    exponential: dict[str, object] = policy["exponential"]
    return exponential


def test_group_update_keeps_the_exponential_options_left_out(server: ServerProcess, name: str) -> None:
    group = f"{name}-g"
    server.cli("group", "create", group, "--retry-policy", "exponential", "--initial", "3s", "--multiplier", "3",
               "--max", "1m")
    assert _exponential(server, group) == {"initial": "3s", "max": "60s", "multiplier": 3.0}

    server.cli("group", "update", group, "--max", "10s")
    assert _exponential(server, group) == {"initial": "3s", "max": "10s", "multiplier": 3.0}
    server.cli("group", "update", group, "--multiplier", "1.5")
    assert _exponential(server, group) == {"initial": "3s", "max": "10s", "multiplier": 1.5}
    server.cli("group", "update", group, "--initial", "2s", "--retry-policy", "exponential")
    assert _exponential(server, group) == {"initial": "2s", "max": "10s", "multiplier": 1.5}
    # Options that do not touch the policy leave it alone.
    server.cli("group", "update", group, "--max-retries", "5")
    assert _exponential(server, group) == {"initial": "2s", "max": "10s", "multiplier": 1.5}

    # From the customized policy, options left out take the exponential defaults (1s, x2, 2h).
    other = f"{name}-other"
    server.cli("group", "create", other)
    server.cli("group", "update", other, "--max", "10s")
    assert _exponential(server, other) == {"initial": "1s", "max": "10s", "multiplier": 2.0}
    # An update that leaves max below the kept initial is refused and changes nothing.
    refused = server.cli("group", "update", group, "--max", "1s", check=False)
    assert refused.returncode == 1 and "max >= initial" in refused.stderr, refused.stderr
    assert _exponential(server, group) == {"initial": "2s", "max": "10s", "multiplier": 1.5}
