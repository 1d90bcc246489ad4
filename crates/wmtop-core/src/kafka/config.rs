//! The one place that builds a Kafka client's settings. Every client wmtop makes (the
//! producer, the group consumer, the admin client, the lag sampler, the readers of
//! check, re-drive and the replay planner, the benchmarks) gets its librdkafka
//! properties from [`client_config`], so a connection setting — brokers, TLS, SASL, a
//! `-X` property — reaches all of them. The user's `-X` properties come last and win.

use rdkafka::ClientConfig;

use super::role::Role;
use crate::config::Settings;

/// The largest message wmtop produces or reads (10 MiB).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// The client id every client of this process gives the brokers: `wmtop@HOST/PID`, so a
/// group's members say which host and process they are (a `-X client.id=…` replaces it).
pub fn process_client_id() -> String {
    format!("wmtop@{}/{}", host_name(), std::process::id())
}

/// This machine's host name, as the kernel reports it ("unknown" when it cannot).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The client id the brokers see for `settings`: the user's `client.id` if given, else
/// [`process_client_id`].
pub fn client_id(settings: &Settings) -> String {
    settings
        .kafka_options
        .get("client.id")
        .map_or_else(process_client_id, str::to_string)
}

/// The librdkafka properties for a client of this role.
pub fn client_config(settings: &Settings, role: Role) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka_brokers)
        .set("client.id", process_client_id())
        .set("socket.keepalive.enable", "true")
        // Routed through wmtop's logger by the client context.
        .set("log_level", "6");
    security(settings, &mut c);
    let fetch = |c: &mut ClientConfig| {
        // A message is a whole transaction (about 0.5 MB), so the local queue reaches
        // its size threshold after a few dozen; librdkafka then postpones the next fetch
        // by fetch.queue.backoff.ms (1 s by default), which stalls a load that has
        // just drained the queue into a batch.
        c.set("fetch.queue.backoff.ms", "20")
            .set("fetch.max.bytes", MAX_MESSAGE_BYTES.to_string())
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
                // About sixteen transactions read ahead: enough to keep the batch
                // growing while one is inserted; every further megabyte queued is one
                // the batches cannot use (a 10x load peaked at 114 MB with 32 MiB
                // queued, 80 MB with 8 MiB, in the same time).
                .set("queued.max.messages.kbytes", "8192")
                // The consumer learns the moment it has read a partition to its end, and
                // flushes then rather than after a guessed pause.
                .set("enable.partition.eof", "true");
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
            kafka_option: vec![
                "fetch.wait.max.ms=250".into(),
                "client.rack=r1".into(),
                "fetch.queue.backoff.ms=500".into(),
            ],
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
            let c = client_config(&s, role);
            assert_eq!(c.get("security.protocol"), Some("SASL_SSL"), "{role:?}");
            assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
            assert_eq!(c.get("sasl.username"), Some("alice"));
            assert_eq!(c.get("sasl.password"), Some("pw-xyz"));
            assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
            assert_eq!(c.get("client.rack"), Some("r1"));
            // The user's -X wins over wmtop's own tuning.
            assert_eq!(c.get("fetch.wait.max.ms"), Some("250"), "{role:?}");
        }
        let g = client_config(&s, Role::Group);
        assert_eq!(g.get("group.id"), Some("wmtop"));
        assert_eq!(g.get("enable.auto.commit"), Some("false"));
        assert_eq!(g.get("fetch.queue.backoff.ms"), Some("500"), "-X wins");
        let r = client_config(&s, Role::Reader);
        assert_eq!(r.get("group.id"), Some("wmtop-reader"));
    }

    #[test]
    fn every_broker_gets_the_same_properties_and_the_client_id_names_host_and_process() {
        let s = Settings::defaults();
        let c = client_config(&s, Role::Group);
        assert_eq!(c.get("fetch.wait.max.ms"), None, "librdkafka's default");
        assert_eq!(c.get("fetch.queue.backoff.ms"), Some("20"));
        assert_eq!(c.get("enable.partition.eof"), Some("true"));
        assert_eq!(c.get("debug"), None);
        assert_eq!(c.get("security.protocol"), Some("PLAINTEXT"));
        let id = c.get("client.id").unwrap().to_string();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(id, format!("wmtop@{}/{}", host.trim(), std::process::id()));
        assert_eq!(client_id(&s), id);
        // -X client.id=… replaces it, for every client and for who "this wmtop" is.
        let args = CommonArgs {
            kafka_option: vec!["client.id=loader-7".into()],
            ..CommonArgs::default()
        };
        let mut x = Settings::defaults();
        x.kafka_options = Settings::resolve_with(&args, &|_| None)
            .unwrap()
            .kafka_options;
        assert_eq!(
            client_config(&x, Role::Producer).get("client.id"),
            Some("loader-7")
        );
        assert_eq!(client_id(&x), "loader-7");
    }
}
