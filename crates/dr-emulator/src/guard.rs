//! The local stack acts only on a local emulator: seeding creates databases and instances, and
//! must never run against a real account.

use std::net::IpAddr;

use dr_core::aws::AwsClients;
use dr_core::error::DrError;

/// Whether an endpoint URL points at this machine: `localhost`, or a loopback address
/// (`127.0.0.0/8`, `::1`). A host that merely starts with `127.` (`127.example.com`) is not.
pub fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else { return false };
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Refuses anything but an emulator on the loopback interface (`EmulatorOnly`).
pub fn require_emulator(clients: &AwsClients) -> Result<(), DrError> {
    match clients.endpoint_url() {
        Some(endpoint) if is_loopback(endpoint) => Ok(()),
        other => Err(DrError::EmulatorOnly { endpoint: other.unwrap_or("(none: real AWS)").to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients_at(endpoint: Option<&str>) -> AwsClients {
        let mut shared = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            shared = shared.endpoint_url(endpoint);
        }
        AwsClients::from_config(&shared.build(), "eu-west-3", "eu-west-1")
    }

    #[test]
    fn only_a_loopback_emulator_may_be_used() {
        for allowed in [
            "http://127.0.0.1:5000",
            "http://localhost:5000",
            "http://[::1]:5000",
            "http://127.9.9.9",
            "http://LOCALHOST",
        ] {
            assert!(require_emulator(&clients_at(Some(allowed))).is_ok(), "{allowed}");
        }
        for refused in [
            None,
            Some("https://rds.eu-west-1.amazonaws.com"),
            Some("http://10.0.0.5:5000"),
            Some("http://127.0.0.1.nip.io:5000"),
            Some("http://127.attacker.example:5000"),
            Some("http://localhost.example.com"),
            Some("not a url"),
        ] {
            let err = require_emulator(&clients_at(refused)).expect_err("refused");
            assert_eq!(err.name(), "EmulatorOnly", "{refused:?}");
        }
    }
}
