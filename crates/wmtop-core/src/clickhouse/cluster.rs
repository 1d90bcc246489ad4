//! ClickHouse clusters: where the metrics table keeps its rows, as the server reports it
//! (`system.tables`: the table itself, or a Distributed table over a local table on the
//! replicas of a cluster, and whether its sharding key keeps each record's versions on one
//! shard); the tables wmtop makes on a cluster (`clickhouse_cluster`); and each replica's
//! state, read from the replica itself (up, rows, delay, queue, read-only, last error).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::client::{lenient_u64, Ch, ChError};
use super::compat::{self, Placement, ServerVersion};
use crate::clickhouse::queries::quote;
use crate::config::Settings;

/// The sharding key of the Distributed tables wmtop makes: one transaction's rows, and so
/// all versions of each of its records, on one shard.
pub const METRICS_SHARDING_KEY: &str = "cityHash64(application_id, transaction_name)";

/// The sharding key of the dead letters' Distributed table.
const DEAD_LETTERS_SHARDING_KEY: &str = "cityHash64(topic, kafka_partition, kafka_offset)";

/// Columns a sharding key may read and still keep each record's versions together: the
/// record's identity, which all its versions share.
const IDENTITY_COLUMNS: &[&str] = &[
    "application_id",
    "application_name",
    "transaction_name",
    "transaction_id",
    "alias",
    "timestamp",
    "timestamp_str",
    "key",
];

/// Functions that give another answer for the same row.
const NONDETERMINISTIC: &[&str] = &[
    "rand",
    "rand32",
    "rand64",
    "randConstant",
    "now",
    "now64",
    "today",
    "yesterday",
    "generateUUIDv4",
    "rowNumberInAllBlocks",
    "rowNumberInBlock",
    "blockNumber",
];

/// A Distributed table's target and how it spreads rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Distributed {
    pub cluster: String,
    /// The table on each replica that stores the rows, `database.table`.
    pub local: String,
    pub sharding_key: Option<String>,
    pub shards: usize,
    pub replicas: usize,
    /// One record's versions can be sent to different shards, where no merge can meet
    /// them (several shards, and a key that is not a function of the record's identity).
    pub splits_records: bool,
}

impl Distributed {
    /// What it is, in a sentence, for the log and `wmtop config`.
    pub fn describe(&self, table: &str) -> String {
        let key = self.sharding_key.as_deref().unwrap_or("none");
        let mut s = format!(
            "{table} is a Distributed table over {} on cluster {} ({} shard{}, {} replica{} in all; sharding key {key})",
            self.local,
            self.cluster,
            self.shards,
            if self.shards == 1 { "" } else { "s" },
            self.replicas,
            if self.replicas == 1 { "" } else { "s" },
        );
        if self.splits_records {
            s.push_str(
                ": the sharding key can send one record's versions to different shards, where \
                 no merge removes the older ones; shard by the record's identity, e.g. ",
            );
            s.push_str(METRICS_SHARDING_KEY);
        }
        s
    }
}

/// Reads a Distributed engine's arguments (`Distributed(cluster, db, table[, key[,
/// policy]])`, names bare or quoted) from `engine_full`.
pub fn parse_distributed(engine_full: &str) -> Option<(String, String, String, Option<String>)> {
    let inner = engine_full
        .trim()
        .strip_prefix("Distributed(")?
        .rsplit_once(')')?
        .0;
    let args = split_args(inner);
    let name = |s: &str| s.trim().trim_matches(['\'', '"', '`']).to_string();
    let cluster = name(args.first()?);
    let db = name(args.get(1)?);
    let table = name(args.get(2)?);
    let key = args.get(3).map(|k| k.trim().to_string());
    Some((cluster, db, table, key))
}

/// Splits on the commas outside brackets and quotes.
fn split_args(s: &str) -> Vec<&str> {
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    let mut out = Vec::new();
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Whether a sharding key keeps every version of a record on one shard: it reads only
/// the record's identity and calls nothing that answers differently each time.
pub fn keeps_records_together(key: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = key.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            continue;
        }
        if quoted {
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            let call = c == '(' || (c == ' ' && chars.peek() == Some(&'('));
            words.push((std::mem::take(&mut word), call));
        }
    }
    if !word.is_empty() {
        words.push((word, false));
    }
    words.iter().all(|(w, call)| {
        if *call {
            !NONDETERMINISTIC.contains(&w.as_str())
        } else {
            w.chars().all(|c| c.is_ascii_digit()) || IDENTITY_COLUMNS.contains(&w.as_str())
        }
    })
}

#[derive(Deserialize)]
struct ClusterRow {
    shard_num: u32,
    host_name: String,
    #[serde(deserialize_with = "lenient_u64")]
    port: u64,
}

/// The replicas of `cluster`, as the server lists them: (shard, host, native port).
pub async fn members(ch: &Ch, cluster: &str) -> Result<Vec<(u32, String, u16)>, ChError> {
    let rows: Vec<ClusterRow> = ch
        .json_rows(&format!(
            "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = {} ORDER BY shard_num, replica_num",
            quote(cluster)
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.shard_num, r.host_name, u16::try_from(r.port).unwrap_or(0)))
        .collect())
}

/// Active parts of the Replicated table `table` (`database.table`) on the server `ch`
/// talks to that its replica's list in ZooKeeper does not hold: parts of inserts whose
/// commit was cut off ("unknown status"), which ClickHouse drops after a while unless
/// ZooKeeper has them. Empty for a table that is not Replicated.
pub async fn parts_not_in_zookeeper(ch: &Ch, table: &str) -> Result<Vec<String>, ChError> {
    #[derive(Deserialize)]
    struct Replica {
        zookeeper_path: String,
        replica_name: String,
    }
    #[derive(Deserialize)]
    struct Part {
        name: String,
    }
    let (db, t) = table
        .split_once('.')
        .unwrap_or((ch.database.as_str(), table));
    let this = format!("database = {} AND table = {}", quote(db), quote(t));
    let replicas: Vec<Replica> = ch
        .json_rows(&format!(
            "SELECT zookeeper_path, replica_name FROM system.replicas WHERE {this}"
        ))
        .await?;
    let Some(r) = replicas.first() else {
        return Ok(Vec::new());
    };
    let listed = format!("{}/replicas/{}/parts", r.zookeeper_path, r.replica_name);
    let parts: Vec<Part> = ch
        .json_rows(&format!(
            "SELECT name FROM system.parts WHERE {this} AND active AND name NOT IN \
             (SELECT name FROM system.zookeeper WHERE path = {})",
            quote(&listed)
        ))
        .await?;
    Ok(parts.into_iter().map(|p| p.name).collect())
}

/// The Distributed table's description, completed from the cluster's members.
pub async fn distributed(ch: &Ch, engine_full: &str) -> Result<Option<Distributed>, ChError> {
    let Some((cluster, db, table, key)) = parse_distributed(engine_full) else {
        return Ok(None);
    };
    let members = members(ch, &cluster).await?;
    let shards = members.iter().map(|m| m.0).collect::<BTreeSet<_>>().len();
    let splits = shards > 1 && !key.as_deref().is_some_and(keeps_records_together);
    Ok(Some(Distributed {
        cluster,
        local: format!("{db}.{table}"),
        sharding_key: key,
        shards,
        replicas: members.len(),
        splits_records: splits,
    }))
}

/// The statements that make wmtop's tables on `settings.clickhouse_cluster`, in order,
/// each with the table it makes (`database.table`; `None` for the database): Replicated
/// tables on every replica, and Distributed tables over them named as the settings name
/// the tables.
pub fn cluster_ddl(settings: &Settings, v: ServerVersion) -> Vec<(Option<String>, String)> {
    let Some(cluster) = &settings.clickhouse_cluster else {
        return Vec::new();
    };
    let db = &settings.database;
    let table = &settings.table;
    let local = local_table(settings);
    let dead = format!("{table}_dead_letters");
    let dead_local = format!("{local}_dead_letters");
    let place = |name: &str| Placement::Cluster {
        cluster: cluster.clone(),
        zk_path: compat::zk_path(&settings.clickhouse_zookeeper_path, db, name),
    };
    let name = |t: &str| Some(format!("{db}.{t}"));
    vec![
        (
            None,
            format!("CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER {cluster}"),
        ),
        (
            name(&local),
            compat::metrics_table_ddl(db, &local, v, &place(&local)),
        ),
        (
            name(table),
            compat::distributed_ddl(db, table, cluster, &local, METRICS_SHARDING_KEY),
        ),
        (
            name(&dead_local),
            compat::dead_letter_table_ddl(db, &dead_local, &place(&dead_local)),
        ),
        (
            name(&dead),
            compat::distributed_ddl(db, &dead, cluster, &dead_local, DEAD_LETTERS_SHARDING_KEY),
        ),
    ]
}

/// For a metrics table that already is a Distributed one: its dead-letter table made the
/// same way, on its cluster (Replicated where the metrics table's local one is), behind
/// a Distributed table named `<table>_dead_letters`.
pub async fn dead_letters_ddl_for(
    ch: &Ch,
    settings: &Settings,
    d: &Distributed,
    info: &super::table::TableInfo,
) -> Result<Vec<(Option<String>, String)>, ChError> {
    let db = &ch.database;
    let (local_db, local) = d
        .local
        .split_once('.')
        .unwrap_or((db.as_str(), d.local.as_str()));
    let dead = format!("{}_dead_letters", ch.table);
    let dead_local = format!("{local}_dead_letters");
    let place = if info.replicated() {
        Placement::Cluster {
            cluster: d.cluster.clone(),
            zk_path: compat::zk_path(&settings.clickhouse_zookeeper_path, local_db, &dead_local),
        }
    } else {
        Placement::Here
    };
    let mut local_ddl = compat::dead_letter_table_ddl(local_db, &dead_local, &place);
    if place == Placement::Here {
        // Not replicated, but on every host of the cluster all the same.
        local_ddl = local_ddl.replacen(
            &format!("{local_db}.{dead_local}"),
            &format!("{local_db}.{dead_local} ON CLUSTER {}", d.cluster),
            1,
        );
    }
    Ok(vec![
        (Some(format!("{local_db}.{dead_local}")), local_ddl),
        (
            Some(format!("{db}.{dead}")),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{}_dead_letters ON CLUSTER {c} AS {local_db}.{dead_local}\n\
                 ENGINE = Distributed({c}, {local_db}, {dead_local}, {DEAD_LETTERS_SHARDING_KEY})",
                ch.table,
                c = d.cluster
            ),
        ),
    ])
}

/// The settings for one replica: the configured URL with the replica's host (its scheme,
/// port and credentials as configured: replicas serve HTTP alike on their own hosts).
pub fn replica_settings(settings: &Settings, host: &str) -> Settings {
    let mut s = settings.clone();
    if let Ok(mut url) = url::Url::parse(&settings.clickhouse_url) {
        if url.set_host(Some(host)).is_ok() {
            s.clickhouse_url = url.to_string().trim_end_matches('/').to_string();
        }
    }
    s
}

/// What the metrics table is, as the server reports it, in a sentence (for `wmtop
/// config`): a Distributed table and what is behind it, a table and its engine, or not
/// there yet; or why it could not be read (within 5 s).
pub async fn table_found(settings: &Settings) -> String {
    let read = async {
        let ch = Ch::connect(settings).await?;
        let info = super::table::TableInfo::read(&ch).await?;
        Ok::<_, ChError>((ch, info))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), read).await {
        Err(_) => "unknown: ClickHouse did not answer within 5 s".into(),
        Ok(Err(e)) => format!("unknown: {e}"),
        Ok(Ok((ch, None))) => match &settings.clickhouse_cluster {
            Some(c) => format!(
                "{} is not there yet: the first load makes it on cluster {c}",
                ch.qualified()
            ),
            None => format!(
                "{} is not there yet: the first load makes it",
                ch.qualified()
            ),
        },
        Ok(Ok((ch, Some(info)))) => match &info.distributed {
            Some(d) => format!(
                "{}; {} is {}, partitioned by {}",
                d.describe(&ch.qualified()),
                d.local,
                info.engine,
                info.partition_key
            ),
            None => format!(
                "{} is {}, partitioned by {}",
                ch.qualified(),
                info.engine,
                info.partition_key
            ),
        },
    }
}

/// A replica delayed by more than this is flagged as stale.
pub const STALE_AFTER_S: u64 = 60;

/// One replica of the table behind a Distributed one, as the replica itself reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaState {
    pub shard: u32,
    /// `host:port` (the native port, as the cluster names it).
    pub host: String,
    /// It answered.
    pub up: bool,
    /// Rows in its active parts (metadata, no scan).
    pub rows: Option<u64>,
    /// Seconds behind the newest data of its shard.
    pub absolute_delay: Option<u64>,
    /// Replication tasks waiting.
    pub queue_size: Option<u64>,
    /// It takes no writes (it lost ZooKeeper, or was told to).
    pub readonly: Option<bool>,
    /// Why it is down, or the newest replication error it reports.
    pub last_error: Option<String>,
}

impl ReplicaState {
    /// Up, but behind by more than [`STALE_AFTER_S`], or read-only.
    pub fn troubled(&self) -> bool {
        self.up
            && (self.readonly == Some(true)
                || self.absolute_delay.is_some_and(|d| d > STALE_AFTER_S))
    }
}

/// Watches the replicas of the table behind a Distributed one: a connection to each,
/// made again when it fails.
pub struct ReplicaWatch {
    settings: Settings,
    /// (database, table) of the local table.
    local: (String, String),
    members: Vec<(u32, String, u16)>,
    connections: std::collections::BTreeMap<String, Ch>,
}

impl ReplicaWatch {
    /// The replicas of the settings' table when it is a Distributed one; None for any
    /// other table, or one not there yet.
    pub async fn find(settings: &Settings) -> Result<Option<ReplicaWatch>, ChError> {
        let ch = Ch::connect(settings).await?;
        let Some(info) = super::table::TableInfo::read(&ch).await? else {
            return Ok(None);
        };
        let Some(d) = info.distributed else {
            return Ok(None);
        };
        let (db, table) = d.local.split_once('.').unwrap_or_default();
        Ok(Some(ReplicaWatch {
            settings: settings.clone(),
            local: (db.to_string(), table.to_string()),
            members: members(&ch, &d.cluster).await?,
            connections: Default::default(),
        }))
    }

    /// Each replica's state now, in the cluster's order.
    pub async fn sample(&mut self) -> Vec<ReplicaState> {
        let mut out = Vec::with_capacity(self.members.len());
        for (shard, host, port) in self.members.clone() {
            let mut state = ReplicaState {
                shard,
                host: format!("{host}:{port}"),
                ..ReplicaState::default()
            };
            match self.read(&host).await {
                Ok(r) => {
                    state.up = true;
                    state.rows = Some(r.0);
                    if let Some((delay, queue, readonly, expired, error)) = r.1 {
                        state.absolute_delay = Some(delay);
                        state.queue_size = Some(queue);
                        state.readonly = Some(readonly || expired);
                        state.last_error = match (expired, error.is_empty()) {
                            (true, _) => {
                                Some("its ZooKeeper session expired: it takes no writes".into())
                            }
                            (false, false) => Some(error),
                            (false, true) if readonly => {
                                Some("read-only: it cannot reach ZooKeeper".into())
                            }
                            _ => None,
                        };
                    }
                }
                Err(e) => {
                    self.connections.remove(&host);
                    state.last_error = Some(e.to_string());
                }
            }
            out.push(state);
        }
        out
    }

    /// One replica's rows and replication state (none where the table is not
    /// replicated): (delay, queue, read-only, session expired, newest error).
    async fn read(&mut self, host: &str) -> Result<(u64, Option<ReplicaRow>), ChError> {
        #[derive(Deserialize)]
        struct Rows {
            #[serde(deserialize_with = "lenient_u64")]
            rows: u64,
        }
        #[derive(Deserialize)]
        struct Rep {
            #[serde(deserialize_with = "lenient_u64")]
            absolute_delay: u64,
            #[serde(deserialize_with = "lenient_u64")]
            queue_size: u64,
            is_readonly: u8,
            is_session_expired: u8,
            last_error: String,
        }
        let ch = match self.connections.get(host) {
            Some(ch) => ch.clone(),
            None => {
                let ch = Ch::connect(&replica_settings(&self.settings, host)).await?;
                self.connections.insert(host.to_string(), ch.clone());
                ch
            }
        };
        let (db, table) = (quote(&self.local.0), quote(&self.local.1));
        let rows: Vec<Rows> = ch
            .json_rows(&format!(
                "SELECT sum(rows) AS rows FROM system.parts WHERE database = {db} AND table = {table} AND active"
            ))
            .await?;
        let rep: Vec<Rep> = ch
            .json_rows(&format!(
                "SELECT absolute_delay, queue_size, is_readonly, is_session_expired, \
                 (SELECT any(last_exception) FROM system.replication_queue \
                  WHERE database = {db} AND table = {table} AND last_exception != '') AS last_error \
                 FROM system.replicas WHERE database = {db} AND table = {table}"
            ))
            .await?;
        Ok((
            rows.first().map_or(0, |r| r.rows),
            rep.into_iter().next().map(|r| {
                (
                    r.absolute_delay,
                    r.queue_size,
                    r.is_readonly > 0,
                    r.is_session_expired > 0,
                    r.last_error,
                )
            }),
        ))
    }
}

/// A replica's replication state: delay, queue, read-only, session expired, newest error.
type ReplicaRow = (u64, u64, bool, bool, String);

/// The local table wmtop makes behind the Distributed one.
pub fn local_table(settings: &Settings) -> String {
    settings
        .clickhouse_local_table
        .clone()
        .unwrap_or_else(|| format!("{}_local", settings.table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distributed_engine_is_read_with_or_without_quotes_and_key() {
        assert_eq!(
            parse_distributed("Distributed(wmtop_cluster, db, t_local, cityHash64(application_id, transaction_name))"),
            Some((
                "wmtop_cluster".into(),
                "db".into(),
                "t_local".into(),
                Some("cityHash64(application_id, transaction_name)".into())
            ))
        );
        assert_eq!(
            parse_distributed("Distributed('c', 'db', 't')"),
            Some(("c".into(), "db".into(), "t".into(), None))
        );
        assert_eq!(parse_distributed("ReplacingMergeTree(v)"), None);
    }

    #[test]
    fn a_key_of_the_records_identity_keeps_its_versions_together_and_rand_does_not() {
        for key in [
            "cityHash64(application_id, transaction_name)",
            "sipHash64(transaction_name)",
            "toYYYYMM(timestamp) % 4",
            "intHash32(transaction_id)",
        ] {
            assert!(keeps_records_together(key), "{key}");
        }
        for key in [
            "rand()",
            "cityHash64(application_id, record_version)",
            "cityHash64(ingestion_time)",
            "now()",
        ] {
            assert!(!keeps_records_together(key), "{key}");
        }
        let d = Distributed {
            cluster: "c".into(),
            local: "db.t_local".into(),
            sharding_key: Some("rand()".into()),
            shards: 2,
            replicas: 4,
            splits_records: true,
        };
        let text = d.describe("db.t");
        assert!(
            text.contains("2 shards, 4 replicas in all; sharding key rand()"),
            "{text}"
        );
        assert!(
            text.contains("can send one record's versions to different shards"),
            "{text}"
        );
    }

    #[test]
    fn on_a_cluster_the_statements_make_replicated_tables_behind_distributed_ones() {
        let mut s = Settings::defaults();
        s.clickhouse_cluster = Some("c1".into());
        let v = ServerVersion::parse("18.16").unwrap();
        let ddl = cluster_ddl(&s, v);
        let made: Vec<Option<&str>> = ddl.iter().map(|(t, _)| t.as_deref()).collect();
        assert_eq!(
            made,
            vec![
                None,
                Some("watermelon.transaction_metrics_local"),
                Some("watermelon.transaction_metrics"),
                Some("watermelon.transaction_metrics_local_dead_letters"),
                Some("watermelon.transaction_metrics_dead_letters"),
            ]
        );
        assert!(ddl[1].1.contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/watermelon/transaction_metrics_local', '{replica}', record_version)"
        ), "{}", ddl[1].1);
        assert!(ddl[2].1.contains("Distributed(c1, watermelon, transaction_metrics_local, cityHash64(application_id, transaction_name))"));
        s.clickhouse_cluster = None;
        assert!(cluster_ddl(&s, v).is_empty());
    }
}
