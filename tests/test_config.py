"""agent.toml mistakes stop the agent with the file, key and value named."""

import pytest

from scb_core.config import AgentConfig, load_agent_config, save_agent_config
from scb_core.errors import ConfigError


def load(tmp_path, text: str):
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return load_agent_config(path), path


def assert_config_error(tmp_path, text: str, *fragments: str):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "agent.toml") in message
    for fragment in fragments:
        assert fragment in message


def test_empty_file_gives_safe_defaults(tmp_path):
    config, _ = load(tmp_path, "")

    assert config.allowed_domains == []
    assert config.challenge_ports == "1-1023"
    assert "10.0.0.0/8" in config.allowed_networks
    assert config.policy().allowed_domains == ()


def test_saved_config_loads_back_equal(tmp_path):
    config = AgentConfig(allowed_domains=["home.arpa"], resolvers=["10.0.0.1:5353"])
    save_agent_config(config, tmp_path / "agent.toml")

    assert load_agent_config(tmp_path / "agent.toml") == config


def test_unknown_key_is_named(tmp_path):
    assert_config_error(tmp_path, "allowed_domain = []", "allowed_domain", "unknown")


def test_unknown_key_in_section_is_named(tmp_path):
    assert_config_error(tmp_path, "[limits]\nfoo = 1", "limits.foo")


def test_wrong_type_is_named_with_value(tmp_path):
    assert_config_error(
        tmp_path, 'max_names = "ten"', "max_names", "an integer", "'ten'"
    )


def test_list_of_wrong_items_is_refused(tmp_path):
    assert_config_error(tmp_path, "allowed_domains = [1]", "allowed_domains", "[1]")


def test_bad_network_is_named(tmp_path):
    assert_config_error(
        tmp_path, 'allowed_networks = ["10.0.0.0/33"]', "allowed_networks", "/33"
    )


def test_bad_port_range_is_named(tmp_path):
    assert_config_error(tmp_path, 'challenge_ports = "1023-1"', "challenge_ports")


def test_bad_listen_is_named(tmp_path):
    assert_config_error(tmp_path, 'listen = "0.0.0.0"', "listen", "needs a port")


def test_resolver_must_be_an_address(tmp_path):
    assert_config_error(tmp_path, 'resolvers = ["dns.lan"]', "resolvers", "dns.lan")


def test_bad_approval_is_named(tmp_path):
    assert_config_error(tmp_path, 'approval = "maybe"', "approval", "maybe")


def test_validity_over_397_is_refused(tmp_path):
    assert_config_error(tmp_path, "max_validity_days = 400", "max_validity_days")


def test_negative_timeout_is_refused(tmp_path):
    assert_config_error(tmp_path, "[timeouts]\nrequest = -1", "timeouts.request")


def test_uppercase_domain_is_refused(tmp_path):
    assert_config_error(tmp_path, 'allowed_domains = ["Home.Arpa"]', "Home.Arpa")


def test_invalid_toml_names_the_file(tmp_path):
    assert_config_error(tmp_path, "name = ", "not valid TOML")


def test_manual_approval_per_suffix():
    config = AgentConfig(manual_approval_domains=["secure.home.arpa"])

    assert config.needs_approval(["a.secure.home.arpa"])
    assert not config.needs_approval(["a.home.arpa"])


def test_crl_url_is_derived_from_http_listen():
    config = AgentConfig(http_listen="127.0.0.1:8080")

    assert config.effective_crl_url == "http://127.0.0.1:8080/crl.der"


def test_crl_url_for_a_listener_on_every_address_uses_the_server_name():
    config = AgentConfig(http_listen="0.0.0.0:80", server_names=["ca.home.arpa"])

    assert config.effective_crl_url == "http://ca.home.arpa:80/crl.der"


def test_crl_url_brackets_an_ipv6_listener():
    config = AgentConfig(http_listen="[fd00::1]:8080")

    assert config.effective_crl_url == "http://[fd00::1]:8080/crl.der"


def test_configured_crl_url_wins_over_http_listen():
    config = AgentConfig(http_listen="127.0.0.1:80", crl_url="http://crl.lab/a.crl")

    assert config.effective_crl_url == "http://crl.lab/a.crl"


def test_shipped_limits_are_the_documented_defaults(tmp_path):
    config, _ = load(tmp_path, "")

    assert config.limits.requests_per_address_per_hour == 30
    assert config.limits.failures_per_address_per_hour == 5
    assert config.limits.failures_per_name_per_hour == 5
    assert config.limits.certificates_per_name_set_per_week == 10
    assert config.limits.connections_per_address == 4
    assert config.limits.connections_total == 256
    assert config.limits.ban_seconds == 3600
    assert config.limits.max_ban_seconds == 7 * 24 * 3600


def test_a_limit_of_zero_is_named_with_its_value(tmp_path):
    assert_config_error(
        tmp_path,
        "[limits]\nrequests_per_address_per_hour = 0",
        "limits.requests_per_address_per_hour",
        "= 0",
    )


def test_a_limit_that_is_not_a_whole_number_is_named(tmp_path):
    assert_config_error(
        tmp_path,
        "[limits]\nconnections_total = 2.5",
        "limits.connections_total",
        "an integer",
        "2.5",
    )


def test_a_first_ban_longer_than_the_longest_is_refused(tmp_path):
    assert_config_error(
        tmp_path,
        "[limits]\nban_seconds = 90000\nmax_ban_seconds = 3600",
        "limits.ban_seconds",
        "90000",
        "3600",
    )
