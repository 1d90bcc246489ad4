//! Loading into ClickHouse so that a plain `SELECT count()` sees one row per record:
//! the database and tables are created where missing (and only there, naming the grant
//! a refusal lacks; on `clickhouse_cluster`, Replicated tables behind Distributed ones);
//! rows arrive RowBinary-encoded with their identity, Kafka time and content hash; before
//! a batch is inserted, the hours already stored with the same content, or with a newer
//! version, are dropped from it; what is left goes in (into a Distributed table only once
//! every shard stored it, reading and writing the same replica); and once a load has
//! drained, [`Loader::settle`] looks for copies among the hours the load wrote (and only
//! there), merges just the partitions that hold them, and checks, on every replica, that
//! none is left before the load is reported done.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::client::{lenient_i64, lenient_u64, Ch, ChError, ChErrorKind};
use super::compat::{dead_letter_ddl, metrics_ddl};
use super::sql;
use super::table::{leb128, schema_error, RowPlan, TableInfo};
use crate::config::Settings;
use crate::record::columns::{
    FieldRef, Fields, MetricRow, APPLICATION_ID_COLUMN, TIMESTAMP_COLUMN, TRANSACTION_NAME_COLUMN,
};

/// A row's identity and what decides whether it is stored: `(application_id,
/// transaction_name, time in whole seconds)`.
pub type RecordKey = (Arc<str>, Arc<str>, i64);

/// A row's application and transaction, as the batch shares them.
type IdPair<'a> = (&'a Arc<str>, &'a Arc<str>);

/// One encoded row's identity, version, hash and place in the batch's bytes.
#[derive(Clone, Debug)]
pub struct RowMeta {
    pub key: RecordKey,
    /// The Kafka time (ms) of the message it came from.
    pub version: u64,
    pub hash: u64,
    start: usize,
    end: usize,
}

/// Rows encoded for the table, with their identities.
#[derive(Debug, Default)]
pub struct Rows {
    bytes: Vec<u8>,
    /// The bytes once the batch is complete ([`Rows::seal`]): an insert that keeps
    /// every row sends them as they are, however often it is retried.
    sealed: Option<bytes::Bytes>,
    pub meta: Vec<RowMeta>,
    /// The last identity strings, shared by the rows of one transaction.
    last: Option<(Arc<str>, Arc<str>)>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Encoded size.
    pub fn bytes(&self) -> usize {
        self.buf().len()
    }

    /// The encoded rows, all of them.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.unseal();
        self.bytes
    }

    /// Marks the batch complete: its bytes are shared from now on, not copied, by
    /// inserts that keep every row.
    pub fn seal(&mut self) {
        if self.sealed.is_none() {
            self.sealed = Some(bytes::Bytes::from(std::mem::take(&mut self.bytes)));
        }
    }

    fn unseal(&mut self) {
        if let Some(b) = self.sealed.take() {
            self.bytes = b.to_vec();
        }
    }

    fn buf(&self) -> &[u8] {
        self.sealed.as_deref().unwrap_or(&self.bytes)
    }

    /// Encodes a row for the plan, with its version and hash when the table keeps them.
    pub fn push(&mut self, plan: &RowPlan, row: &MetricRow, version: u64) {
        self.push_fields(plan, &row.fields(), version);
    }

    /// Encodes a row given as borrowed values, as [`Rows::push`] does.
    pub fn push_fields(&mut self, plan: &RowPlan, fields: &Fields<'_>, version: u64) {
        self.unseal();
        let start = self.bytes.len();
        plan.encode(fields, &mut self.bytes);
        let hash = twox_hash::XxHash3_64::oneshot(&self.bytes[start..]);
        if plan.versioned {
            self.bytes.extend_from_slice(&version.to_le_bytes());
            self.bytes.extend_from_slice(&hash.to_le_bytes());
        }
        let text = |i: usize| match fields[i] {
            FieldRef::Id(s) => s,
            _ => "",
        };
        let (app_id, tx_name) = (text(APPLICATION_ID_COLUMN), text(TRANSACTION_NAME_COLUMN));
        let (app, name) = match &self.last {
            Some((a, n)) if **a == *app_id && **n == *tx_name => (Arc::clone(a), Arc::clone(n)),
            _ => {
                let ids: (Arc<str>, Arc<str>) = (Arc::from(app_id), Arc::from(tx_name));
                self.last = Some(ids.clone());
                ids
            }
        };
        let ms = match fields[TIMESTAMP_COLUMN] {
            FieldRef::Time(ms) => ms,
            _ => 0,
        };
        self.meta.push(RowMeta {
            key: (app, name, ms.div_euclid(1000)),
            version,
            hash,
            start,
            end: self.bytes.len(),
        });
    }

    /// Moves the rows of `other` to the end of these, and leaves `other` empty, to be
    /// filled again: with its room kept when these held rows (they are copied), with
    /// these rows' old buffer when they held none (the buffers are swapped, not copied).
    pub fn append(&mut self, other: &mut Rows) {
        if self.meta.is_empty() {
            std::mem::swap(self, other);
            other.clear();
            return;
        }
        self.unseal();
        let shift = self.bytes.len();
        self.bytes.extend_from_slice(other.buf());
        self.meta.extend(other.meta.drain(..).map(|mut m| {
            m.start += shift;
            m.end += shift;
            m
        }));
        self.last = other.last.take();
        other.clear();
    }

    /// No rows, the room kept.
    pub fn clear(&mut self) {
        self.sealed = None;
        self.bytes.clear();
        self.meta.clear();
        self.last = None;
    }

    /// The bytes of the rows at these indexes (ascending, each once): a sealed
    /// batch's own when every row is kept, else a copy.
    fn select(&self, keep: &[usize]) -> bytes::Bytes {
        if let Some(b) = &self.sealed {
            if keep.len() == self.meta.len() {
                return b.clone();
            }
        }
        let buf = self.buf();
        let mut out = Vec::with_capacity(buf.len());
        for &i in keep {
            let m = &self.meta[i];
            out.extend_from_slice(&buf[m.start..m.end]);
        }
        out.into()
    }
}

/// The records a load wrote, as the key ranges to look in for copies: its applications,
/// its transactions and the span of their hours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub applications: BTreeSet<String>,
    pub transactions: BTreeSet<String>,
    /// First and last hour written, epoch seconds.
    pub span: Option<(i64, i64)>,
}

impl Written {
    pub fn is_empty(&self) -> bool {
        self.span.is_none()
    }

    fn add(&mut self, key: &RecordKey) {
        if !self.applications.contains(key.0.as_ref()) {
            self.applications.insert(key.0.to_string());
        }
        if !self.transactions.contains(key.1.as_ref()) {
            self.transactions.insert(key.1.to_string());
        }
        let (lo, hi) = self.span.unwrap_or((key.2, key.2));
        self.span = Some((lo.min(key.2), hi.max(key.2)));
    }

    /// Adds what another insert wrote.
    pub fn extend(&mut self, other: &Written) {
        self.applications.extend(other.applications.iter().cloned());
        self.transactions.extend(other.transactions.iter().cloned());
        if let Some((lo, hi)) = other.span {
            let (a, b) = self.span.unwrap_or((lo, hi));
            self.span = Some((a.min(lo), b.max(hi)));
        }
    }

    /// Conditions that together select these records through the table's key: one per
    /// group of transactions, each short enough for a server's `max_query_size`
    /// (256 KiB by default) however many transactions a load wrote; none when nothing
    /// was written.
    pub fn conditions(&self) -> Vec<String> {
        /// Bytes of transaction names per condition.
        const NAMES_PER_QUERY: usize = 64 * 1024;
        let Some((lo, hi)) = self.span else {
            return Vec::new();
        };
        let applications: Vec<&str> = self.applications.iter().map(String::as_str).collect();
        let mut groups: Vec<Vec<&str>> = vec![Vec::new()];
        let mut bytes = 0;
        for name in &self.transactions {
            if bytes + name.len() > NAMES_PER_QUERY && !groups[groups.len() - 1].is_empty() {
                groups.push(Vec::new());
                bytes = 0;
            }
            bytes += name.len() + 4;
            let last = groups.len() - 1;
            groups[last].push(name);
        }
        groups
            .iter()
            .map(|names| sql::written_condition(&applications, names, lo, hi))
            .collect()
    }
}

/// ClickHouse's code for an insert into a Replicated table whose commit to ZooKeeper
/// was cut off: the part may or may not be in ZooKeeper.
const UNKNOWN_STATUS_OF_INSERT: u32 = 319;

/// An insert's body goes to the server in slices of this size (1 MiB).
const SEND_SLICE: usize = 1 << 20;

/// What one insert did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Rows written.
    pub rows: usize,
    /// Rows not written: the hour is stored with the same content, or with a newer
    /// version (or the batch held a newer copy of it).
    pub unchanged: usize,
    /// Of the rows written, those whose hour was already stored with other content: a
    /// copy until the month is merged.
    pub replaced: usize,
    /// The records written.
    pub written: Written,
}

/// What settling a load found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Settled {
    /// Partitions merged to remove copies (as `system.parts` names them).
    pub merged: Vec<String>,
    /// Stored copies left among the records the load wrote (0 when settled), on the
    /// replica that holds the most.
    pub copies_left: u64,
    /// Parts a replica holds that ZooKeeper does not list (inserts whose outcome was
    /// unknown; their rows were inserted again): ClickHouse drops them after its check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed_parts: Vec<String>,
    pub took_ms: u64,
}

/// A message or record kept aside, with its reason and payload.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// 1: a whole message; 2: one record.
    pub scope: Scope,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub message_key: String,
    /// -1 for a whole message.
    pub record_index: i32,
    pub reason: String,
    pub payload: Vec<u8>,
}

/// Whether a whole message or one record was set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Scope {
    Message = 1,
    Record = 2,
}

impl DeadLetter {
    /// RowBinary, in the column order of [`dead_letter_ddl`] (the Enum8 first: never a
    /// whitespace byte).
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.scope as u8);
        let text = |s: &[u8], out: &mut Vec<u8>| {
            leb128(s.len(), out);
            out.extend_from_slice(s);
        };
        text(self.topic.as_bytes(), out);
        out.extend_from_slice(&self.kafka_partition.to_le_bytes());
        out.extend_from_slice(&self.kafka_offset.to_le_bytes());
        text(self.message_key.as_bytes(), out);
        out.extend_from_slice(&self.record_index.to_le_bytes());
        text(self.reason.as_bytes(), out);
        text(&self.payload, out);
    }
}

/// A connection that may write, with the tables in place and the row plan for them.
/// On a Distributed table its queries read and insert through the same replica of each
/// shard (the first one up, in the cluster's order), and an insert returns only once
/// every shard stored its rows.
#[derive(Clone)]
pub struct Loader {
    pub ch: Ch,
    pub plan: Arc<RowPlan>,
    pub info: TableInfo,
    settings: Arc<Settings>,
    /// On a Replicated table: a replica may hold a part whose insert ended in "unknown
    /// status" (ZooKeeper lost mid-commit; ClickHouse keeps the part for a few minutes,
    /// then drops it unless ZooKeeper has it). Set at start and after such an error;
    /// cleared once no replica holds such a part.
    in_doubt: Arc<std::sync::atomic::AtomicBool>,
}

impl Loader {
    /// Creates what is missing (database, metrics table, dead-letter table; on
    /// `clickhouse_cluster`, Replicated tables on every replica behind Distributed ones),
    /// reads the table's columns and builds the row plan. A read-only user, or a refused
    /// CREATE, is an error naming what is missing.
    pub async fn prepare(ch: Ch, settings: &Settings) -> Result<Loader, ChError> {
        let user = settings.clickhouse_user.as_str();
        let db = ch.database.clone();
        let grant = |what: &str, on: &str| format!("GRANT {what} ON {on} TO {user}");
        if ch.readonly > 0 {
            return Err(ChError {
                url: ch.url.clone(),
                action: format!("load into {}", ch.qualified()),
                detail: format!(
                    "user {user} is read-only (readonly={}): it can watch and query, not load; loading needs {} and {}",
                    ch.readonly,
                    grant("CREATE TABLE", &format!("{db}.*")),
                    grant("INSERT", &ch.qualified())
                ),
                kind: ChErrorKind::NotAllowed,
                code: None,
            });
        }
        let (planned, on_cluster) = planned_tables(&ch, settings).await?;
        // A statement ON CLUSTER waits for every host of the cluster; one that is down
        // would hold it for the server's default of three minutes.
        let ddl_ch = if on_cluster {
            ch.with_settings(&[("distributed_ddl_task_timeout", ON_CLUSTER_WAIT_S)])
        } else {
            ch.clone()
        };
        for (table, ddl) in planned {
            let exists = match table.as_deref().and_then(|t| t.split_once('.')) {
                None => sql::database_exists(&db),
                Some((d, t)) => sql::table_exists(d, t),
            };
            let here = || async {
                let found: Vec<Named> = ch.json_rows(&exists).await?;
                Ok::<bool, ChError>(!found.is_empty())
            };
            if here().await? {
                continue;
            }
            let what = if table.is_none() {
                "CREATE DATABASE"
            } else {
                "CREATE TABLE"
            };
            match ddl_ch.execute(&ddl).await {
                Ok(()) => {}
                // Made here and queued for the hosts that did not answer in time: they
                // make it when they are back, and Replicated tables then fetch the rows.
                Err(e) if e.code == Some(TIMEOUT_EXCEEDED) && on_cluster && here().await? => {
                    tracing::warn!(
                        "{} is made on this replica, not yet on every host of the cluster: {}",
                        table.as_deref().unwrap_or(&db),
                        e.detail
                    );
                }
                Err(e) => return Err(refused(e, &grant(what, &format!("{db}.*")))),
            }
        }
        let info = TableInfo::read(&ch).await?.ok_or_else(|| ChError {
            url: ch.url.clone(),
            action: format!("read the columns of {}", ch.qualified()),
            detail: "the table is not there after creating it".into(),
            kind: ChErrorKind::Unexpected,
            code: None,
        })?;
        let plan = RowPlan::for_table(&ch.qualified(), &info, ch.version)
            .map_err(|e| schema_error(&ch, e))?;
        report_table(&ch, &info, &plan);
        // Read and write the same replica of each shard, and insert synchronously.
        let ch = match &info.distributed {
            Some(_) => ch.with_settings(&[
                (ch.version.sync_distributed_insert(), "1"),
                ("load_balancing", "in_order"),
            ]),
            None => ch,
        };
        let replicated = info.replicated();
        Ok(Loader {
            plan: Arc::new(plan),
            info,
            settings: Arc::new(settings.clone()),
            ch,
            in_doubt: Arc::new(std::sync::atomic::AtomicBool::new(replicated)),
        })
    }

    /// Inserts what the table does not hold yet: rows whose hour is stored with the
    /// same content or a newer version are left out. All or nothing.
    pub async fn insert(&self, rows: &Rows) -> Result<Inserted, ChError> {
        let mut out = Inserted::default();
        if rows.is_empty() {
            return Ok(out);
        }
        // The newest copy of each hour within the batch.
        let mut newest: HashMap<&RecordKey, usize> = HashMap::with_capacity(rows.len());
        for (i, m) in rows.meta.iter().enumerate() {
            match newest.get(&m.key) {
                Some(&j) if rows.meta[j].version > m.version => {}
                _ => {
                    newest.insert(&m.key, i);
                }
            }
        }
        // Rows a replica shows from a part ZooKeeper never took would be lost if the
        // lookup counted them as stored: while such parts exist, everything is inserted
        // and copies are merged when the load settles.
        let stored = if self.plan.versioned && !self.parts_in_doubt().await {
            self.stored_versions(rows).await?
        } else {
            HashMap::new()
        };
        let mut keep: Vec<usize> = Vec::with_capacity(newest.len());
        for (i, m) in rows.meta.iter().enumerate() {
            if newest.get(&m.key) != Some(&i) {
                out.unchanged += 1;
                continue;
            }
            match stored.get(&m.key) {
                Some(&(v, h)) if m.version < v || m.hash == h => out.unchanged += 1,
                Some(_) => {
                    out.replaced += 1;
                    keep.push(i);
                }
                None => keep.push(i),
            }
        }
        if !self.plan.versioned {
            out.replaced = 0;
        }
        out.rows = keep.len();
        for &i in &keep {
            out.written.add(&rows.meta[i].key);
        }
        if keep.is_empty() {
            return Ok(out);
        }
        let body = rows.select(&keep);
        if let Err(e) = self.send(&self.plan.insert_sql, body).await {
            if e.code == Some(UNKNOWN_STATUS_OF_INSERT) {
                self.in_doubt
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Err(e);
        }
        Ok(out)
    }

    /// Whether a replica holds active parts its ZooKeeper does not list (checked only
    /// while in doubt; a failed check counts as doubt).
    async fn parts_in_doubt(&self) -> bool {
        use std::sync::atomic::Ordering;
        if !self.in_doubt.load(Ordering::Relaxed) {
            return false;
        }
        let (replicas, table) = match &self.info.distributed {
            Some(_) => (
                self.replicas().await,
                self.info.storage(&self.ch.qualified()),
            ),
            None => (vec![self.ch.clone()], self.ch.qualified()),
        };
        let mut doubt = replicas.is_empty();
        for r in &replicas {
            match super::cluster::parts_not_in_zookeeper(r, &table).await {
                Ok(parts) if parts.is_empty() => {}
                Ok(parts) => {
                    tracing::warn!(
                        "{}: {table} holds {} part(s) ZooKeeper does not list ({}), left by an insert whose outcome was unknown; inserting without the lookup until ClickHouse has checked them",
                        r.url,
                        parts.len(),
                        parts.join(", ")
                    );
                    doubt = true;
                }
                Err(e) => {
                    tracing::warn!(
                        "{}: cannot compare {table}'s parts with ZooKeeper: {e}",
                        r.url
                    );
                    doubt = true;
                }
            }
        }
        self.in_doubt.store(doubt, Ordering::Relaxed);
        doubt
    }

    async fn send(&self, sql: &str, body: bytes::Bytes) -> Result<(), ChError> {
        let action = sql.split(" FORMAT").next().unwrap_or(sql).to_string();
        let mut insert = self.ch.client().insert_formatted_with(sql.to_string());
        // In slices (no copy): each is compressed and on its way while the next is
        // compressed, so the server reads a batch while it is being compressed rather
        // than after (a 10x load's six 32 MiB inserts each landed about 65 ms sooner).
        let mut at = 0;
        while at < body.len() {
            let end = (at + SEND_SLICE).min(body.len());
            insert
                .send(body.slice(at..end))
                .await
                .map_err(|e| self.insert_error(&action, &e))?;
            at = end;
        }
        insert
            .end()
            .await
            .map_err(|e| self.insert_error(&action, &e))
    }

    fn insert_error(&self, action: &str, e: &::clickhouse::error::Error) -> ChError {
        let err = self.ch.err(action, e);
        if err.kind == ChErrorKind::NotAllowed {
            let table = action
                .strip_prefix("INSERT INTO ")
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            return refused(
                err,
                &format!(
                    "GRANT INSERT ON {table} TO {}",
                    self.settings.clickhouse_user
                ),
            );
        }
        err
    }

    /// Per hour of the batch's transactions: the newest stored version and its hash.
    async fn stored_versions(
        &self,
        rows: &Rows,
    ) -> Result<HashMap<RecordKey, (u64, u64)>, ChError> {
        #[derive(Deserialize)]
        struct R {
            a: String,
            n: String,
            #[serde(deserialize_with = "lenient_i64")]
            ts: i64,
            #[serde(deserialize_with = "lenient_u64")]
            v: u64,
            #[serde(deserialize_with = "lenient_u64")]
            h: u64,
        }
        // The batch's own identity strings, to key the answer with.
        let ids: HashMap<(&str, &str), IdPair<'_>> = rows
            .meta
            .iter()
            .map(|m| ((m.key.0.as_ref(), m.key.1.as_ref()), (&m.key.0, &m.key.1)))
            .collect();
        // Through the table's key: the batch's applications, transactions and hours,
        // in queries that each fit the server's query size.
        let mut batch = Written::default();
        for m in &rows.meta {
            batch.add(&m.key);
        }
        let mut found: Vec<R> = Vec::new();
        for condition in batch.conditions() {
            let sql = sql::stored_versions(&self.ch.qualified(), &condition);
            found.extend(self.ch.json_rows::<R>(&sql).await?);
        }
        Ok(found
            .into_iter()
            .filter_map(|r| {
                let (a, n) = ids.get(&(r.a.as_str(), r.n.as_str()))?;
                Some(((Arc::clone(a), Arc::clone(n), r.ts), (r.v, r.h)))
            })
            .collect())
    }

    /// Inserts the dead letters that are not already kept (same topic, partition,
    /// offset and record). Returns how many were new.
    pub async fn insert_dead_letters(&self, letters: &[DeadLetter]) -> Result<usize, ChError> {
        if letters.is_empty() {
            return Ok(0);
        }
        #[derive(Deserialize)]
        struct K {
            topic: String,
            kafka_partition: i32,
            #[serde(deserialize_with = "lenient_i64")]
            kafka_offset: i64,
            record_index: i32,
        }
        let offsets: BTreeSet<(i32, i64)> = letters
            .iter()
            .map(|l| (l.kafka_partition, l.kafka_offset))
            .collect();
        let topics: BTreeSet<&str> = letters.iter().map(|l| l.topic.as_str()).collect();
        let sql = sql::kept_dead_letters(
            &self.ch.dead_letters_table(),
            &topics.into_iter().collect::<Vec<_>>(),
            &offsets.into_iter().collect::<Vec<_>>(),
        );
        let kept: BTreeSet<(String, i32, i64, i32)> = self
            .ch
            .json_rows::<K>(&sql)
            .await?
            .into_iter()
            .map(|k| (k.topic, k.kafka_partition, k.kafka_offset, k.record_index))
            .collect();
        let mut body = Vec::new();
        let mut new = 0;
        let mut seen = BTreeSet::new();
        for l in letters {
            let key = (
                l.topic.clone(),
                l.kafka_partition,
                l.kafka_offset,
                l.record_index,
            );
            if kept.contains(&key) || !seen.insert(key) {
                continue;
            }
            l.encode(&mut body);
            new += 1;
        }
        if new > 0 {
            let sql = format!(
                "INSERT INTO {} (scope, topic, kafka_partition, kafka_offset, message_key, record_index, reason, payload) FORMAT RowBinary",
                self.ch.dead_letters_table()
            );
            self.send(&sql, body.into()).await?;
        }
        Ok(new)
    }

    /// Copies among the records `written`, on `ch` in `table`, per partition (as
    /// `OPTIMIZE … PARTITION` takes it): rows beyond one per record; rows of the parts
    /// `unlisted` (not in ZooKeeper) left out.
    async fn copies_on(
        &self,
        ch: &Ch,
        table: &str,
        written: &Written,
        unlisted: &[String],
    ) -> Result<BTreeMap<String, u64>, ChError> {
        #[derive(Deserialize)]
        struct R {
            p: serde_json::Value,
            #[serde(deserialize_with = "lenient_u64")]
            copies: u64,
        }
        let key = self.partition_key();
        let mut copies = BTreeMap::new();
        for mut condition in written.conditions() {
            if !unlisted.is_empty() {
                let parts: Vec<String> =
                    unlisted.iter().map(|p| super::queries::quote(p)).collect();
                condition.push_str(&format!(" AND _part NOT IN ({})", parts.join(", ")));
            }
            let found: Vec<R> = ch
                .json_rows(&sql::copies_per_partition(table, key, &condition))
                .await?;
            for r in found {
                *copies.entry(sql::partition_literal(&r.p)).or_insert(0) += r.copies;
            }
        }
        Ok(copies)
    }

    /// The partition key, or `tuple()` for a table that has none.
    fn partition_key(&self) -> &str {
        match self.info.partition_key.trim() {
            "" => "tuple()",
            key => key,
        }
    }

    /// After the last batch of a load has landed: finds copies among the records the
    /// load wrote (reading only those, through the table's key), merges just the
    /// partitions that hold them, and looks again (on every replica, where the table is
    /// replicated) until none is left or `deadline` passes. Copies on a table that is not
    /// a Replacing engine cannot be merged away and are reported.
    pub async fn settle(&self, written: &Written, deadline: Duration) -> Result<Settled, ChError> {
        let started = Instant::now();
        let mut settled = Settled::default();
        let storage = self.info.storage(&self.ch.qualified());
        let replicas = self.replicas().await;
        // Parts of inserts whose outcome was unknown, which ClickHouse neither merges
        // nor keeps unless ZooKeeper has them: their rows were inserted again, so they
        // are not counted as copies; plain counts show them until ClickHouse drops them.
        let mut unlisted: Vec<Vec<String>> = Vec::new();
        if self.info.replicated() {
            let targets = if replicas.is_empty() {
                std::slice::from_ref(&self.ch)
            } else {
                &replicas[..]
            };
            let table = if replicas.is_empty() {
                self.ch.qualified()
            } else {
                storage.clone()
            };
            for r in targets {
                let parts = super::cluster::parts_not_in_zookeeper(r, &table)
                    .await
                    .unwrap_or_default();
                settled.unconfirmed_parts.extend(parts.iter().cloned());
                unlisted.push(parts);
            }
        }
        let none = Vec::new();
        let own_unlisted = if replicas.is_empty() {
            unlisted.first().unwrap_or(&none)
        } else {
            &none
        };
        // A merge already running on those parts makes OPTIMIZE a no-op, and replicas
        // take a merge in turn: between looks, wait the one backoff, and merge again
        // only now and then.
        let mut waits = crate::net::retry::delays(Duration::from_millis(200));
        let mut looks = 0u32;
        loop {
            // Through a Distributed table, unlisted parts are left out replica by replica.
            let mut found = if replicas.is_empty() || settled.unconfirmed_parts.is_empty() {
                self.copies_on(&self.ch, &self.ch.qualified(), written, own_unlisted)
                    .await?
            } else {
                BTreeMap::new()
            };
            settled.copies_left = found.values().sum();
            for (i, r) in replicas.iter().enumerate() {
                let skip = unlisted.get(i).unwrap_or(&none);
                let there = self.copies_on(r, &storage, written, skip).await?;
                settled.copies_left = settled.copies_left.max(there.values().sum());
                found.extend(there);
            }
            if found.is_empty() || !self.info.replacing() || started.elapsed() >= deadline {
                break;
            }
            if looks % 4 == 0 {
                for p in found.keys() {
                    self.ch.execute(&self.merge_sql(&storage, p)).await?;
                    if !settled.merged.contains(p) {
                        settled.merged.push(p.clone());
                    }
                }
            }
            looks += 1;
            if let Some(wait) = waits.next() {
                tokio::time::sleep(wait).await;
            }
        }
        settled.took_ms = started.elapsed().as_millis() as u64;
        if !settled.unconfirmed_parts.is_empty() {
            tracing::warn!(
                "parts {} are on a replica but not in ZooKeeper (inserts whose outcome was unknown, inserted again): plain counts show their rows twice until ClickHouse drops them, within minutes",
                settled.unconfirmed_parts.join(", ")
            );
        }
        Ok(settled)
    }

    /// Connections to every replica of the table behind a Distributed one (none for a
    /// table that is not, or a replica that cannot be reached now: the loader's own
    /// reads still see its shard).
    async fn replicas(&self) -> Vec<Ch> {
        let Some(d) = &self.info.distributed else {
            return Vec::new();
        };
        if !self.info.replicated() {
            return Vec::new();
        }
        let mut out = Vec::new();
        match super::cluster::members(&self.ch, &d.cluster).await {
            Ok(members) => {
                for (_, host, _) in members {
                    let s = super::cluster::replica_settings(&self.settings, &host);
                    match Ch::connect(&s).await {
                        Ok(ch) => out.push(ch),
                        Err(e) => tracing::warn!("replica {host}: not checked for copies: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("the replicas of {}: {e}", d.cluster),
        }
        out
    }

    /// The merge of one partition (`tuple()`: the whole of a table without partitions)
    /// of the table that stores the rows: on every shard where there are several, else
    /// on this server (a Replicated table passes the merge on to its other replicas).
    fn merge_sql(&self, storage: &str, partition: &str) -> String {
        let on_cluster = match &self.info.distributed {
            Some(d) if d.shards > 1 => Some(d.cluster.as_str()),
            _ => None,
        };
        sql::merge_partition(storage, on_cluster, partition)
    }
}

/// How long (seconds) a statement ON CLUSTER waits for the other hosts to make what it
/// makes before the server answers TIMEOUT_EXCEEDED and leaves the rest queued.
const ON_CLUSTER_WAIT_S: &str = "5";

/// ClickHouse's TIMEOUT_EXCEEDED.
const TIMEOUT_EXCEEDED: u32 = 159;

/// The tables the settings want, each with its statement, and whether the statements
/// run ON CLUSTER: on `clickhouse_cluster`, Replicated and Distributed ones on the
/// cluster; else the database and the two tables here. Where the metrics table already
/// is a Distributed table, a missing dead-letter table is made the same way, on its
/// cluster.
async fn planned_tables(
    ch: &Ch,
    settings: &Settings,
) -> Result<(Vec<(Option<String>, String)>, bool), ChError> {
    let db = &ch.database;
    let on_cluster = super::cluster::cluster_ddl(settings, ch.version);
    if !on_cluster.is_empty() {
        return Ok((on_cluster, true));
    }
    if let Some(info) = TableInfo::read(ch).await? {
        if let Some(d) = &info.distributed {
            let ddl = super::cluster::dead_letters_ddl_for(ch, settings, d, &info).await?;
            return Ok((ddl, true));
        }
    }
    let here = vec![
        (None, format!("CREATE DATABASE IF NOT EXISTS {db}")),
        (Some(ch.qualified()), metrics_ddl(db, &ch.table, ch.version)),
        (
            Some(ch.dead_letters_table()),
            dead_letter_ddl(db, &ch.table),
        ),
    ];
    Ok((here, false))
}

/// Says in the log what the table is and what loading it will do.
fn report_table(ch: &Ch, info: &TableInfo, plan: &RowPlan) {
    if let Some(d) = &info.distributed {
        let text = d.describe(&ch.qualified());
        if d.splits_records {
            tracing::warn!("{text}");
        } else {
            tracing::info!("{text}; inserts wait until every shard stored them");
        }
    }
    if !plan.versioned {
        tracing::warn!(
            "table {} has no record_version/record_hash columns: hours loaded again are written again and merged away after each load{}",
            ch.qualified(),
            if info.replacing() { "" } else { " (it is not a ReplacingMergeTree, so copies stay; `wmtop check` lists them)" }
        );
    }
    if !plan.absent.is_empty() {
        tracing::warn!(
            "table {} lacks columns wmtop fills; their values are not stored: {}",
            ch.qualified(),
            plan.absent.join(", ")
        );
    }
}

#[derive(Deserialize)]
struct Named {
    #[allow(dead_code)]
    name: String,
}

/// A refusal with the grant that would allow it.
fn refused(mut e: ChError, grant: &str) -> ChError {
    if e.kind == ChErrorKind::NotAllowed {
        e.detail = format!("{} (missing grant: {grant})", e.detail);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::ServerVersion;
    use crate::record::columns::Timestamp;

    fn rows_of(n: i64) -> (RowPlan, Rows) {
        let version = ServerVersion::parse("18.16").unwrap();
        let plan = RowPlan::for_table("db.t", &TableInfo::own(version), version).unwrap();
        let mut rows = Rows::default();
        for i in 0..n {
            let row = MetricRow {
                transaction_name: format!("GET /{}", i % 2).into(),
                timestamp: Timestamp(1_767_205_800_000 + i * 3_600_000),
                total_count: Some(i),
                ..MetricRow::default()
            };
            rows.push(&plan, &row, 7);
        }
        (plan, rows)
    }

    #[test]
    fn a_sealed_batch_sends_its_own_bytes_when_every_row_is_kept_and_a_copy_otherwise() {
        let (plan, mut rows) = rows_of(5);
        let open = rows.select(&[0, 1, 2, 3, 4]);
        let whole = rows.buf().to_vec();
        assert_eq!(open.as_ref(), whole.as_slice());
        rows.seal();
        let all = rows.select(&[0, 1, 2, 3, 4]);
        let again = rows.select(&[0, 1, 2, 3, 4]);
        assert_eq!(all.as_ref(), whole.as_slice());
        assert_eq!(all.as_ptr(), again.as_ptr(), "shared, not copied");
        let some = rows.select(&[1, 3]);
        let m = (&rows.meta[1], &rows.meta[3]);
        let mut want = whole[m.0.start..m.0.end].to_vec();
        want.extend_from_slice(&whole[m.1.start..m.1.end]);
        assert_eq!(some.as_ref(), want.as_slice());
        assert_ne!(some.as_ptr(), all.as_ptr());
        // Rows pushed after sealing land after the others.
        let row = MetricRow {
            transaction_name: "GET /x".into(),
            timestamp: Timestamp(1_767_205_800_000),
            ..MetricRow::default()
        };
        rows.push(&plan, &row, 8);
        assert_eq!(rows.len(), 6);
        assert_eq!(&rows.buf()[..whole.len()], whole.as_slice());
        assert_eq!(rows.meta[5].start, whole.len());
        assert_eq!(rows.meta[5].end, rows.bytes());
    }

    #[test]
    fn appended_rows_follow_the_others_and_leave_their_source_empty_to_fill_again() {
        let (plan, whole) = rows_of(5);
        // Rows 2..5 of the same five, on their own.
        let tail = |sealed: bool| {
            let (_, mut rest) = rows_of(5);
            let cut = rest.meta[2].start;
            rest.bytes.drain(..cut);
            rest.meta.drain(..2);
            for m in &mut rest.meta {
                m.start -= cut;
                m.end -= cut;
            }
            if sealed {
                rest.seal();
            }
            rest
        };
        for sealed in [false, true] {
            let (_, mut first) = rows_of(2);
            let mut rest = tail(sealed);
            let mut batch = Rows::default();
            // Into an empty batch: the buffers are swapped.
            batch.append(&mut first);
            assert!(first.is_empty() && first.bytes() == 0);
            // Into one that holds rows: copied after them, the source's room kept.
            let room = rest.bytes.capacity();
            batch.append(&mut rest);
            assert!(rest.is_empty() && rest.bytes() == 0 && rest.sealed.is_none());
            assert_eq!(rest.bytes.capacity(), room);
            assert_eq!(batch.len(), 5);
            assert_eq!(
                batch.buf(),
                whole.buf(),
                "the bytes of the five pushed at once"
            );
            for (got, want) in batch.meta.iter().zip(&whole.meta) {
                assert_eq!((got.start, got.end), (want.start, want.end));
                assert_eq!(got.key, want.key);
            }
            // The source fills again from its start.
            let row = MetricRow {
                transaction_name: "GET /y".into(),
                timestamp: Timestamp(1_767_205_800_000),
                ..MetricRow::default()
            };
            rest.push(&plan, &row, 9);
            assert_eq!((rest.len(), rest.meta[0].start), (1, 0));
            assert_eq!(rest.meta[0].end, rest.bytes());
        }
    }

    #[test]
    fn conditions_for_ten_thousand_transactions_each_fit_a_query_and_name_every_one() {
        let mut w = Written::default();
        for i in 0..10_000 {
            let name = format!("PUT /api/endpoint{i}");
            w.add(&(
                Arc::from("app"),
                Arc::from(name.as_str()),
                3600 * i64::from(i),
            ));
        }
        let conditions = w.conditions();
        assert!(conditions.len() > 1, "{}", conditions.len());
        for c in &conditions {
            assert!(c.len() < 100 * 1024, "{} bytes", c.len());
            assert!(c.contains("toDateTime(0) AND toDateTime(35996400)"), "{c}");
        }
        let named: usize = conditions
            .iter()
            .map(|c| c.matches("'PUT /api/endpoint").count())
            .sum();
        assert_eq!(named, 10_000);
        assert!(Written::default().conditions().is_empty());
    }
}
