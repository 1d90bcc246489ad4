//! End to end against the real stack: simulator -> fetch -> Kafka -> consumer ->
//! ClickHouse, with rows per transaction and sampled column values checked against what
//! the API served (on Apache Kafka 4.x, and on 2.8 with ZooKeeper); every response shape;
//! auth failures and token expiry; bad messages.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use wmtop_core::clickhouse::queries::PRESETS;
use wmtop_core::clickhouse::table::{RowPlan, TableInfo};
use wmtop_core::clickhouse::Rows;
use wmtop_core::kafka::Kafka;
use wmtop_core::record::flatten::flatten_each;
use wmtop_sim::{Faults, Shape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_dataset_loads_with_equal_rows_and_values() {
    whole_dataset_loads(settings("e2e", None)).await;
}

/// The same on Apache Kafka of the 2.x line (2.8.2, ZooKeeper mode: `scripts/stack up
/// --legacy-kafka`), as the reference pipeline ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_dataset_loads_through_kafka_2_8_with_zookeeper() {
    let mut s = settings("e2e28", None);
    s.kafka_brokers =
        std::env::var("WMTOP_TEST_LEGACY_KAFKA").unwrap_or_else(|_| "127.0.0.1:9095".into());
    // Small batches here: bounded by their bytes (about 20 MB of rows in all).
    s.batch_mb = 2;
    whole_dataset_loads(s).await;
}

/// A load of `answer` took at least as many batches as `batch_rows` and `batch_mb`
/// allow (a message's rows are never split, so a batch may hold one message's more).
async fn assert_batches_bounded(
    s: &wmtop_core::config::Settings,
    answer: &wmtop_core::source::api::Answer,
    batches: u64,
) {
    let most = s.batch_rows + 288;
    assert!(
        batches as usize >= answer.records().div_ceil(most),
        "{batches} batches for {} rows",
        answer.records()
    );
    // The rows encoded for wmtop's own table on this server: all of them, and the most
    // one message makes, in bytes.
    let version = ch(s).await.version;
    let plan = RowPlan::for_table("t", &TableInfo::own(version), version).unwrap();
    let (mut encoded, mut largest) = (0usize, 0usize);
    for tx in &answer.transactions {
        let mut rows = Rows::default();
        flatten_each(&tx.payload, |r| rows.push(&plan, r, 1)).unwrap();
        encoded += rows.bytes();
        largest = largest.max(rows.bytes());
    }
    let most_bytes = s.batch_bytes() + largest;
    assert!(
        batches as usize >= encoded.div_ceil(most_bytes),
        "{batches} batches for {encoded} bytes of rows, batch_mb {}",
        s.batch_mb
    );
}

/// The simulator's whole dataset through `base`'s Kafka and ClickHouse: every record
/// stored once, values equal to the API's.
async fn whole_dataset_loads(base: wmtop_core::config::Settings) {
    let cfg = sim_config(122, 288);
    let data = wmtop_sim::dataset(&cfg);
    let sim = start_sim(cfg).await;
    let mut s = base;
    s.api_url = Some(sim.url());
    s.keycloak_url = Some(sim.url());

    let answer = fetch(&s).await;
    assert_eq!(answer.transactions.len(), 122);
    assert_eq!(
        answer.records(),
        data.iter().map(|t| t.records.len()).sum::<usize>()
    );
    assert!(s.last_fetch_path().is_file(), "the raw answer is saved");

    let report = publish(&s, &answer).await;
    assert_eq!(report.messages_delivered, 122);
    assert_eq!(report.messages_failed, 0);

    let summary = consume_until_idle(&s, Duration::from_secs(3)).await;
    assert_eq!(summary.messages, 122);
    assert_eq!(summary.bad_messages, 0);
    assert_eq!(summary.bad_records, 0);
    assert_eq!(summary.rows_inserted as usize, answer.records());
    assert_eq!(summary.rows_unchanged, 0);
    assert_batches_bounded(&s, &answer, summary.batches).await;

    let expected = expected_rows(&answer);
    assert_exact(&s, &expected).await;
    let sink = ch(&s).await;
    assert_eq!(sink.stored_rows().await.unwrap(), answer.records() as u64);

    // Sample values: every 7th transaction, its first, middle and last record.
    for tx in data.iter().step_by(7) {
        for rec in [
            &tx.records[0],
            &tx.records[tx.records.len() / 2],
            &tx.records[tx.records.len() - 1],
        ] {
            let sec = rec.timestamp / 1000;
            let rows = query_json(
                &s,
                &format!(
                    "SELECT transaction_id, application_id, application_name, alias, toUnixTimestamp(timestamp) AS ts, \
                     total_count, error_count, error_rate, avg_response_time, percentile_95, eb_consumed_percent, \
                     eb_left_count, eb_health, eb_severity, eb_breached, timestamp_str, response_breach_count \
                     FROM {} WHERE transaction_name = {} AND timestamp = toDateTime({sec}, 'UTC')",
                    sink.qualified(),
                    wmtop_core::clickhouse::queries::quote(&tx.name)
                ),
            )
            .await;
            assert_eq!(rows.len(), 1, "{} at {}", tx.name, rec.timestamp);
            let r = &rows[0];
            let num = |k: &str| -> f64 {
                match &r[k] {
                    serde_json::Value::String(s) => s.parse().unwrap(),
                    v => v.as_f64().unwrap(),
                }
            };
            assert_eq!(r["transaction_id"], tx.transaction_id.to_string());
            assert_eq!(r["application_id"], "31854");
            assert_eq!(r["application_name"], tx.application_name);
            assert_eq!(r["alias"], tx.alias);
            assert_eq!(num("ts") as i64, sec);
            assert_eq!(num("total_count") as i64, rec.total_count);
            assert_eq!(num("error_count") as i64, rec.error_count);
            assert_eq!(num("error_rate"), rec.error_rate);
            assert_eq!(num("avg_response_time"), rec.avg_response_time);
            assert_eq!(num("percentile_95"), rec.percentile_95);
            assert_eq!(num("eb_consumed_percent"), rec.eb_consumed_percent);
            assert_eq!(num("eb_left_count") as i64, rec.eb_left_count);
            assert_eq!(
                num("response_breach_count") as i64,
                rec.response_breach_count
            );
            assert_eq!(r["eb_health"], rec.eb_health);
            assert_eq!(r["eb_severity"], rec.eb_severity);
            assert_eq!(num("eb_breached") != 0.0, rec.eb_breached);
            assert_eq!(r["timestamp_str"], rec.timestamp_str);
        }
    }

    // The reference queries run on this server too, and the row counts agree.
    for p in PRESETS {
        let sql = p.sql(&sink.qualified(), &sink.window, &data[0].name);
        let out = sink.query_text(&sql, "JSONEachRow").await;
        assert!(out.is_ok(), "preset {} failed: {:?}", p.key, out.err());
    }
    let p95 = query_json(
        &s,
        &wmtop_core::clickhouse::queries::preset("p95").unwrap().sql(
            &sink.qualified(),
            &sink.window,
            &data[0].name,
        ),
    )
    .await;
    assert_eq!(p95.len(), data[0].records.len());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_shape_loads() {
    for shape in [Shape::Array, Shape::Data, Shape::Records, Shape::Series] {
        let mut cfg = sim_config(6, 24);
        cfg.shape = shape;
        let sim = start_sim(cfg).await;
        let s = settings("shape", Some(&sim.url()));
        let answer = fetch(&s).await;
        assert_eq!(answer.transactions.len(), 6, "{shape:?}");
        publish(&s, &answer).await;
        let summary = consume_until_idle(&s, Duration::from_secs(2)).await;
        assert_eq!(summary.messages, 6, "{shape:?}");
        assert_exact(&s, &expected_rows(&answer)).await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untidy_numbers_and_missing_fields_still_load() {
    let mut cfg = sim_config(8, 48);
    cfg.faults = Faults {
        strings_for_numbers: 0.3,
        missing_fields: 0.2,
        ..Faults::default()
    };
    let data = wmtop_sim::dataset(&cfg);
    let sim = start_sim(cfg).await;
    let s = settings("untidy", Some(&sim.url()));
    let answer = fetch(&s).await;
    publish(&s, &answer).await;
    let summary = consume_until_idle(&s, Duration::from_secs(2)).await;
    assert_eq!(summary.bad_records, 0);
    assert_exact(&s, &expected_rows(&answer)).await;
    // Missing fields are NULL, present ones (string or not) keep their value.
    let sink = ch(&s).await;
    let rows = query_json(
        &s,
        &format!(
            "SELECT countIf(total_count IS NULL) AS missing, sumIf(total_count, total_count IS NOT NULL) AS total FROM {}",
            sink.qualified()
        ),
    )
    .await;
    let missing: u64 = rows[0]["missing"].as_str().unwrap().parse().unwrap();
    let total: i64 = rows[0]["total"].as_str().unwrap().parse().unwrap();
    assert!(missing > 0, "the fault left some totalCount out");
    let all: i64 = data
        .iter()
        .flat_map(|t| &t.records)
        .map(|r| r.total_count)
        .sum();
    assert!(
        total > 0 && total < all,
        "present counts sum below the full total: {total} vs {all}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_password_is_refused_without_showing_it() {
    let sim = start_sim(sim_config(2, 2)).await;
    let mut s = settings("auth", Some(&sim.url()));
    s.password = wmtop_core::config::secret::Secret::new("wrong-password-a81c");
    let err = api(&s)
        .fetch(s.window(), None, &never(), |_, _, _| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("wrong-password-a81c"), "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_refused_tokens_are_renewed_mid_run() {
    let mut cfg = sim_config(3, 6);
    cfg.token_ttl = Duration::from_secs(2);
    let sim = start_sim(cfg).await;
    let s = settings("expiry", Some(&sim.url()));
    let client = api(&s);
    let first = client
        .fetch(s.window(), None, &never(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(first.answer.transactions.len(), 3);
    let logins = sim.stats().token_requests;
    assert_eq!(logins, 1);
    // The token outlives its use margin: the next fetch refreshes it first.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = client
        .fetch(s.window(), None, &never(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(second.attempts, 1);
    assert_eq!(sim.stats().token_requests, 2, "one refresh");
    // The API refuses a token mid-run: the client logs in again and succeeds.
    sim.set_faults(Faults {
        fail_401: 1,
        ..Faults::default()
    });
    let third = client
        .fetch(s.window(), None, &never(), |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(third.attempts, 2);
    assert_eq!(sim.stats().token_requests, 3);
    // 5xx answers and cut-off bodies are retried.
    sim.set_faults(Faults {
        fail_5xx: 2,
        ..Faults::default()
    });
    assert_eq!(
        client
            .fetch(s.window(), None, &never(), |_, _, _| {})
            .await
            .unwrap()
            .attempts,
        3
    );
    sim.set_faults(Faults {
        truncated: 1,
        malformed_json: 0,
        ..Faults::default()
    });
    assert_eq!(
        client
            .fetch(s.window(), None, &never(), |_, _, _| {})
            .await
            .unwrap()
            .attempts,
        2
    );
    sim.set_faults(Faults {
        malformed_json: 1,
        ..Faults::default()
    });
    assert_eq!(
        client
            .fetch(s.window(), None, &never(), |_, _, _| {})
            .await
            .unwrap()
            .attempts,
        2
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_kept_aside_with_their_reason_and_good_ones_load() {
    let s = settings("bad", None);
    let kafka = Kafka::new(&s);
    kafka.ready().await.unwrap();
    let producer = kafka.producer().unwrap();
    let good = r#"{"transactionName":"GET /good","applicationId":31854,"transactionSeries":[{"timestamp":1767205800000,"totalCount":10},{"timestamp":1767209400000,"totalCount":"11"}]}"#;
    let partly = r#"{"transactionName":"GET /partly","applicationId":31854,"transactionSeries":[{"timestamp":1767205800000,"totalCount":"lots"},{"timestamp":1767205800000,"errorRate":0.5},{"totalCount":3}]}"#;
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("good", good.as_bytes().to_vec()),
        ("notjson", b"this is not json".to_vec()),
        ("noseries", br#"{"transactionName":"GET /x"}"#.to_vec()),
        ("partly", partly.as_bytes().to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x7b]),
        (
            "empty",
            br#"{"transactionName":"GET /e","transactionSeries":[]}"#.to_vec(),
        ),
    ];
    for (key, p) in &payloads {
        producer
            .send(
                FutureRecord::to(&s.topic).key(*key).payload(p),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .unwrap();
    }
    let summary = consume_until_idle(&s, Duration::from_secs(2)).await;
    assert_eq!(summary.messages, 6);
    assert_eq!(summary.bad_messages, 4);
    assert_eq!(summary.bad_records, 2);
    assert_eq!(summary.rows_inserted, 3);
    let rows = rows_in_clickhouse(&s).await;
    assert_eq!(rows.get("GET /good"), Some(&2));
    assert_eq!(rows.get("GET /partly"), Some(&1));

    let sink = ch(&s).await;
    let letters: Vec<serde_json::Value> = sink
        .dead_letters(100)
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 6);
    let reason_of = |key: &str| -> Vec<String> {
        letters
            .iter()
            .filter(|l| l["message_key"] == key)
            .map(|l| l["reason"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        reason_of("notjson")[0].starts_with("not valid JSON"),
        "{:?}",
        reason_of("notjson")
    );
    assert_eq!(
        reason_of("noseries"),
        vec!["no transactionSeries in the transaction object".to_string()]
    );
    assert!(reason_of("binary")[0].contains("not UTF-8"));
    assert_eq!(
        reason_of("empty"),
        vec!["transactionSeries is empty".to_string()]
    );
    let mut partly_reasons = reason_of("partly");
    partly_reasons.sort();
    assert_eq!(partly_reasons.len(), 2);
    assert!(
        partly_reasons[0].starts_with("record 0: field totalCount: expected an integer"),
        "{partly_reasons:?}"
    );
    assert!(
        partly_reasons[1].starts_with("record 2: no usable time"),
        "{partly_reasons:?}"
    );
    // The payload is kept whole, bytes and all.
    let kept = sink
        .query_text(
            &format!(
                "SELECT hex(payload) FROM {} WHERE message_key = 'binary'",
                sink.dead_letters_table()
            ),
            "TabSeparated",
        )
        .await
        .unwrap();
    assert_eq!(kept.trim(), "FFFE007B");
}

/// The DDL of a table a user made before wmtop: other types for some columns, a column
/// wmtop does not know (with a DEFAULT), one it fills missing, no record_version or
/// record_hash, versioned by ingestion time.
fn users_table(database: &str, table: &str, extra: &str) -> String {
    let mut cols = Vec::new();
    for c in wmtop_core::record::columns::COLUMNS {
        let t = match c.name {
            "percentile_99" => continue,
            "total_count" => "Float64".to_string(),
            "eb_health" => "String".to_string(),
            "timestamp" => "DateTime('UTC')".to_string(),
            _ => wmtop_core::clickhouse::compat::column_type(
                c.kind,
                wmtop_core::clickhouse::ServerVersion {
                    major: 18,
                    minor: 16,
                },
            )
            .to_string(),
        };
        cols.push(format!("{} {t}", c.name));
    }
    cols.push("region String DEFAULT 'eu'".into());
    cols.push("ingestion_time DateTime DEFAULT now()".into());
    if !extra.is_empty() {
        cols.push(extra.into());
    }
    format!(
        "CREATE TABLE {database}.{table} ({}) ENGINE = ReplacingMergeTree(ingestion_time) \
         PARTITION BY toYYYYMM(timestamp) ORDER BY (application_id, transaction_name, timestamp)",
        cols.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_table_is_written_in_its_own_types_and_reloads_leave_no_copy() {
    let cfg = sim_config(6, 48);
    let data = wmtop_sim::dataset(&cfg);
    let sim = start_sim(cfg).await;
    let s = settings("existing", Some(&sim.url()));
    let sink = ch(&s).await;
    sink.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", s.database))
        .await
        .unwrap();
    sink.execute(&users_table(&s.database, &s.table, ""))
        .await
        .unwrap();

    let answer = fetch(&s).await;
    publish(&s, &answer).await;
    let first = consume_until_idle(&s, Duration::from_secs(2)).await;
    assert_eq!(first.rows_inserted as usize, answer.records());
    assert_exact(&s, &expected_rows(&answer)).await;
    // Values in the table's own types; its own column keeps its DEFAULT.
    let tx = &data[2];
    let rec = &tx.records[3];
    let rows = query_json(
        &s,
        &format!(
            "SELECT total_count, eb_health, region, toUnixTimestamp(timestamp) AS ts FROM {} \
             WHERE transaction_name = {} AND timestamp = toDateTime({}, 'UTC')",
            sink.qualified(),
            wmtop_core::clickhouse::queries::quote(&tx.name),
            rec.timestamp / 1000
        ),
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["total_count"].as_f64(),
        Some(rec.total_count as f64)
    );
    assert_eq!(rows[0]["eb_health"], rec.eb_health);
    assert_eq!(rows[0]["region"], "eu");

    // Without record_version/record_hash a reload writes the hours again, and the merge
    // after the load leaves one row per record the moment the run is done.
    publish(&s, &answer).await;
    let again = consume_until_idle(&s, Duration::from_secs(2)).await;
    assert_eq!(again.rows_inserted as usize, answer.records());
    let settled = again.settled.expect("settled");
    assert_eq!(settled.copies_left, 0);
    assert!(!settled.merged.is_empty(), "the copies were merged away");
    assert_exact(&s, &expected_rows(&answer)).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_wmtop_cannot_write_is_refused_by_column_before_any_insert() {
    let sim = start_sim(sim_config(2, 6)).await;
    let s = settings("badtable", Some(&sim.url()));
    let sink = ch(&s).await;
    sink.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", s.database))
        .await
        .unwrap();
    let ddl = users_table(&s.database, &s.table, "").replace(
        "error_rate Nullable(Float64)",
        "error_rate Nullable(Decimal(10, 2))",
    );
    assert!(ddl.contains("Decimal"));
    sink.execute(&ddl).await.unwrap();
    let answer = fetch(&s).await;
    publish(&s, &answer).await;
    let opts = wmtop_core::load::ConsumeOptions {
        until_idle: Some(Duration::from_secs(1)),
        pause: None,
        lag: None,
    };
    let summary = wmtop_core::load::run(
        &s,
        opts,
        never(),
        wmtop_core::load::events::Events::default(),
    )
    .await;
    assert_eq!(summary.verdict, wmtop_core::load::Verdict::Failed);
    let err = summary.error.unwrap();
    assert!(
        err.contains(
            "column error_rate has type Nullable(Decimal(10, 2)), which wmtop cannot write"
        ),
        "{err}"
    );
    assert_eq!(summary.messages, 0, "refused before reading anything");
    assert_eq!(sink.stored_rows().await.unwrap(), 0);
    sim.shutdown().await;
}

/// A topic written to steadily: every fetch ends at its newest message, and inserting on
/// that word alone would send each message in an insert of its own (a part each for
/// ClickHouse). Thirty messages a tenth of a second apart go in a few batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_trickle_is_not_inserted_message_by_message() {
    let mut s = settings("trickle", None);
    // Only the topic's end, not the batch's age, decides when a batch goes.
    s.batch_interval = wmtop_core::config::Span(Duration::from_secs(30));
    let kafka = Kafka::new(&s);
    kafka.ready().await.unwrap();
    let consumer = tokio::spawn({
        let s = s.clone();
        async move { consume_until_idle(&s, Duration::from_secs(3)).await }
    });
    let producer = kafka.producer().unwrap();
    for i in 0..30_i64 {
        let name = format!("GET /trickle/{i}");
        let payload = tx_message(&name, i, i);
        producer
            .send(
                FutureRecord::to(&s.topic).key(&name).payload(&payload),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .unwrap();
        // The trickle's own pace.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = consumer.await.unwrap();
    assert_eq!((summary.messages, summary.rows_inserted), (30, 30));
    assert!(
        summary.batches <= 6,
        "{} inserts for 30 messages written over 3 s",
        summary.batches
    );
    let stored = rows_in_clickhouse(&s).await;
    assert_eq!(stored.len(), 30);
    assert!(stored.values().all(|&n| n == 1), "{stored:?}");
}
