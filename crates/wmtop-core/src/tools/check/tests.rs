//! The comparison, per transaction and hour, with plain counts.

use super::*;

const T0: i64 = 1_767_205_800_000;
const H: i64 = 3_600_000;

fn key(name: &str, ms: i64) -> Key {
    (name.to_string(), ms)
}

fn served(n: u64, aside: u64) -> Accounting {
    Accounting {
        served: n,
        set_aside: aside,
    }
}

/// Three sides that disagree: an hour missing from ClickHouse, one missing from the
/// topic, an hour stored three times, and a transaction only ClickHouse has.
fn three_sides() -> (ApiSide, TopicSide, ClickHouseSide) {
    let api = ApiSide {
        keys: [
            (key("a", T0), 1),
            (key("a", T0 + H), 1),
            (key("a", T0 + 2 * H), 1),
            (key("b", T0), 1),
        ]
        .into_iter()
        .collect(),
        accounting: [
            ("a".to_string(), served(3, 0)),
            ("b".to_string(), served(3, 2)),
        ]
        .into_iter()
        .collect(),
    };
    let topic = TopicSide {
        keys: [key("a", T0), key("a", T0 + H), key("b", T0)]
            .into_iter()
            .collect(),
        messages: [("a".to_string(), 2), ("b".to_string(), 1)]
            .into_iter()
            .collect(),
        unusable_messages: 0,
    };
    let ch = ClickHouseSide {
        rows: [
            (key("a", T0), 1),
            (key("a", T0 + 2 * H), 1),
            (key("b", T0), 3),
            (key("c", T0), 1),
        ]
        .into_iter()
        .collect(),
        replacing: true,
    };
    (api, topic, ch)
}

#[test]
fn every_side_is_compared_per_transaction_and_hour_with_plain_counts() {
    let (api, topic, ch) = three_sides();
    let r = compare(&api, &topic, &ch);
    assert!(!r.ok());
    assert_eq!(
        r.gaps,
        vec![
            Gap {
                transaction: "a".into(),
                hour: "2025-12-31T19:30:00Z".into(),
                hour_ms: T0 + H,
                missing_from: MissingFrom::Clickhouse,
            },
            Gap {
                transaction: "a".into(),
                hour: "2025-12-31T20:30:00Z".into(),
                hour_ms: T0 + 2 * H,
                missing_from: MissingFrom::Topic,
            },
        ]
    );
    assert_eq!(
        r.copies,
        vec![Copies {
            transaction: "b".into(),
            hour: "2025-12-31T18:30:00Z".into(),
            hour_ms: T0,
            rows: 3
        }]
    );
    assert_eq!(r.extras.len(), 1);
    assert_eq!(r.extras[0].transaction, "c");
    let a = &r.transactions[0].counts;
    assert_eq!(
        (
            a.api_records,
            a.topic_messages,
            a.topic_records,
            a.stored_rows,
            a.gaps
        ),
        (3, 2, 2, 2, 2)
    );
    let b = &r.transactions[1].counts;
    assert_eq!(
        (b.stored_rows, b.distinct_records, b.copies, b.set_aside),
        (3, 1, 2, 2)
    );
    assert_eq!(r.transactions[1].verdict(), "2 copies");
    assert_eq!(
        (
            r.totals.transactions,
            r.totals.counts.gaps,
            r.totals.counts.copies,
            r.totals.counts.hours_with_copies,
            r.totals.counts.extras
        ),
        (3, 2, 2, 1, 1)
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["gaps"][1]["missing_from"], "topic");
    assert_eq!(json["copies"][0]["rows"], 3);
    let text = r.to_string();
    assert!(
        text.contains(
            "a: 2 gaps (API 3 records, 0 set aside; topic 2; ClickHouse 2 rows, 2 distinct)"
        ),
        "{text}"
    );
    assert!(
        text.contains("copies: b at 2025-12-31T18:30:00Z is stored 3 times (merge pending)"),
        "{text}"
    );
    assert!(
        text.contains("gap: a at 2025-12-31T19:30:00Z missing from clickhouse"),
        "{text}"
    );
    assert!(text.contains("note: c at 2025-12-31T18:30:00Z"), "{text}");
    assert!(text.ends_with("NOT OK\n"), "{text}");
}

#[test]
fn a_set_aside_record_is_ok_and_said() {
    let api = ApiSide {
        keys: [(key("odd", T0), 1), (key("odd", T0 + H), 1)]
            .into_iter()
            .collect(),
        accounting: [("odd".to_string(), served(3, 1))].into_iter().collect(),
    };
    let topic = TopicSide {
        keys: api.keys.keys().cloned().collect(),
        messages: [("odd".to_string(), 1)].into_iter().collect(),
        unusable_messages: 0,
    };
    let ch = ClickHouseSide {
        rows: api.keys.clone(),
        replacing: true,
    };
    let r = compare(&api, &topic, &ch);
    assert!(r.ok());
    assert_eq!(r.transactions[0].verdict(), "ok, 1 set aside");
    assert!(r
        .to_string()
        .contains("API 3 records (1 set aside, 2 to load)"));
}

#[test]
fn extras_alone_are_ok_and_capping_keeps_the_counts() {
    let ch = ClickHouseSide {
        rows: (0..60).map(|h| (key("x", T0 + h * H), 1)).collect(),
        replacing: true,
    };
    let r = compare(&ApiSide::default(), &TopicSide::default(), &ch).capped(LISTED);
    assert!(r.ok());
    assert_eq!(r.extras.len(), 50);
    assert_eq!(r.totals.counts.extras, 60);
    assert!(r.to_string().contains("… and 10 more extras"));
}

#[test]
fn times_are_keyed_to_whole_seconds_and_set_aside_records_counted() {
    let msg = format!(
        r#"{{"transactionName":"a","transactionSeries":[{{"timestamp":{}}},{{"totalCount":1}}]}}"#,
        T0 + 123
    );
    let answer = api::split_answer(bytes::Bytes::from(format!("[{msg}]"))).unwrap();
    let side = ApiSide::of(&answer);
    assert_eq!(
        side.keys.into_iter().collect::<Vec<_>>(),
        vec![(key("a", T0), 1)]
    );
    assert_eq!(side.accounting.get("a"), Some(&served(2, 1)));
}
