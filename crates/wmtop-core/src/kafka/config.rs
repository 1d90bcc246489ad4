//! The one place that builds a Kafka client's settings. Every client wmtop makes (the
//! producer, the group consumer, the admin client, the lag sampler, the readers of
//! check, re-drive and the replay planner, the benchmarks) gets its librdkafka
//! properties from [`client_config`], so a connection setting — brokers, TLS, SASL, a
//! `-X` property — reaches all of them. The user's `-X` properties come last and win.

use rdkafka::ClientConfig;

use super::quirks::Quirks;
use super::role::Role;
use crate::config::Settings;

/// The largest message wmtop produces or reads (10 MiB).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// The librdkafka properties for a client of this role.
pub fn client_config(settings: &Settings, role: Role, quirks: Quirks) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka_brokers)
        .set("client.id", "wmtop")
        .set("socket.keepalive.enable", "true")
        // Routed through wmtop's logger by the client context.
        .set("log_level", "6");
    security(settings, &mut c);
    let fetch = |c: &mut ClientConfig| {
        c.set("fetch.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("max.partition.fetch.bytes", MAX_MESSAGE_BYTES.to_string())
            .set(
                "receive.message.max.bytes",
                (MAX_MESSAGE_BYTES + 1024 * 1024).to_string(),
            );
    };
    match role {
        Role::Producer => {
            c.set("acks", "all")
                .set("enable.idempotence", "true")
                .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
                .set("queue.buffering.max.kbytes", "65536")
                .set("linger.ms", "5")
                .set("message.timeout.ms", "60000");
        }
        Role::Group => {
            c.set("group.id", &settings.group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "3000")
                .set("queued.max.messages.kbytes", "32768");
            fetch(&mut c);
        }
        Role::Reader => {
            // A group id is required by librdkafka even for assign(); this one never
            // joins and never commits.
            c.set("group.id", format!("{}-reader", settings.group))
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("queued.max.messages.kbytes", "16384");
            fetch(&mut c);
        }
        Role::Offsets => {
            c.set("group.id", &settings.group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false");
        }
        Role::Admin => {}
    }
    quirks.apply(role, &mut c);
    for (k, v) in settings.kafka_options.iter() {
        c.set(k, v);
    }
    c
}

/// TLS and SASL from the settings.
fn security(settings: &Settings, c: &mut ClientConfig) {
    let protocol = settings.kafka_security_protocol;
    c.set("security.protocol", protocol.as_str());
    if let Some(m) = settings.kafka_sasl_mechanism {
        c.set("sasl.mechanism", m.as_str());
    }
    if let Some(u) = &settings.kafka_sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &settings.kafka_sasl_password {
        c.set("sasl.password", p.expose());
    }
    for (key, path) in [
        ("ssl.ca.location", &settings.kafka_ca_file),
        ("ssl.certificate.location", &settings.kafka_cert_file),
        ("ssl.key.location", &settings.kafka_key_file),
    ] {
        if let Some(p) = path {
            c.set(key, p.display().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::Secret;
    use crate::config::{CommonArgs, SaslMechanism, SecurityProtocol};

    fn settings() -> Settings {
        let mut s = Settings::defaults();
        s.kafka_security_protocol = SecurityProtocol::SaslSsl;
        s.kafka_sasl_mechanism = Some(SaslMechanism::ScramSha512);
        s.kafka_sasl_username = Some("alice".into());
        s.kafka_sasl_password = Some(Secret::new("pw-xyz"));
        s.kafka_ca_file = Some("/etc/ca.pem".into());
        let args = CommonArgs {
            kafka_option: vec!["fetch.wait.max.ms=250".into(), "client.rack=r1".into()],
            ..CommonArgs::default()
        };
        s.kafka_options = Settings::resolve_with(&args, &|_| None)
            .unwrap()
            .kafka_options;
        s
    }

    #[test]
    fn every_role_gets_the_connection_settings_and_the_users_properties() {
        let s = settings();
        for role in [
            Role::Producer,
            Role::Group,
            Role::Reader,
            Role::Offsets,
            Role::Admin,
        ] {
            for quirks in [Quirks::none(), Quirks::local_broker()] {
                let c = client_config(&s, role, quirks);
                assert_eq!(c.get("security.protocol"), Some("SASL_SSL"), "{role:?}");
                assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
                assert_eq!(c.get("sasl.username"), Some("alice"));
                assert_eq!(c.get("sasl.password"), Some("pw-xyz"));
                assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
                assert_eq!(c.get("client.rack"), Some("r1"));
                // The user's -X wins over wmtop's own tuning, quirks included.
                assert_eq!(c.get("fetch.wait.max.ms"), Some("250"), "{role:?}");
            }
        }
        let g = client_config(&s, Role::Group, Quirks::none());
        assert_eq!(g.get("group.id"), Some("wmtop"));
        assert_eq!(g.get("enable.auto.commit"), Some("false"));
        let r = client_config(&s, Role::Reader, Quirks::none());
        assert_eq!(r.get("group.id"), Some("wmtop-reader"));
    }

    #[test]
    fn the_short_fetch_wait_is_for_the_local_broker_only() {
        let s = Settings::defaults();
        let plain = client_config(&s, Role::Group, Quirks::none());
        assert_eq!(plain.get("fetch.wait.max.ms"), None, "librdkafka's default");
        let local = client_config(&s, Role::Group, Quirks::local_broker());
        assert_eq!(local.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(plain.get("security.protocol"), Some("PLAINTEXT"));
    }
}
