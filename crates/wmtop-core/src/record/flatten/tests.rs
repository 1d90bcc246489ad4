//! Flattening held to its rules: identifiers, nulls, numbers sent as strings, wrong
//! types, time fallbacks, message errors, drift; and the fast path held to the serde path.

use super::fast;
use super::serde_path::flatten_serde;
use super::*;
use crate::record::columns::{MetricRow, Timestamp, COLUMNS, TIMESTAMP_COLUMN};

const T0: i64 = 1_767_205_800_000;

fn one(record: &str) -> Result<MetricRow, String> {
    let msg = format!(
        r#"{{"transactionName":"GET /a","applicationId":31854,"transactionSeries":[{record}]}}"#
    );
    let f = flatten_message(msg.as_bytes()).map_err(|e| e.to_string())?;
    match (f.rows.into_iter().next(), f.bad_records.into_iter().next()) {
        (Some(row), None) => Ok(row),
        (None, Some(bad)) => Err(bad.reason),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn identifiers_come_from_the_transaction_when_the_record_lacks_them() {
    let row = one(&format!(r#"{{"timestamp":{T0},"totalCount":10}}"#)).unwrap();
    assert_eq!(row.transaction_name, "GET /a");
    assert_eq!(row.application_id, "31854");
    assert_eq!(row.timestamp, Timestamp(T0));
    assert_eq!(row.total_count, Some(10));
}

#[test]
fn a_records_own_identifier_wins() {
    let row = one(&format!(
        r#"{{"timestamp":{T0},"transactionName":"GET /b","applicationId":"7"}}"#
    ))
    .unwrap();
    assert_eq!(row.transaction_name, "GET /b");
    assert_eq!(row.application_id, "7");
}

#[test]
fn missing_and_null_fields_are_null_not_zero() {
    let row = one(&format!(
        r#"{{"timestamp":{T0},"errorRate":null,"ebHealth":null}}"#
    ))
    .unwrap();
    assert_eq!(row.error_rate, None);
    assert_eq!(row.eb_health, None);
    assert_eq!(row.percentile_99, None);
    assert_eq!(row.eb_breached, None);
}

#[test]
fn numbers_sent_as_strings_keep_their_value() {
    let row = one(&format!(
        r#"{{"timestamp":"{T0}","totalCount":"1234","errorRate":" 0.125 ","percentile95":"88.5","ebBreached":"true","ebLeftCount":"-3"}}"#
    ))
    .unwrap();
    assert_eq!(row.timestamp, Timestamp(T0));
    assert_eq!(row.total_count, Some(1234));
    assert_eq!(row.error_rate, Some(0.125));
    assert_eq!(row.percentile_95, Some(88.5));
    assert_eq!(row.eb_breached, Some(true));
    assert_eq!(row.eb_left_count, Some(-3));
}

#[test]
fn wrong_types_are_an_error_for_the_record_naming_the_field() {
    let err = one(&format!(r#"{{"timestamp":{T0},"totalCount":"lots"}}"#)).unwrap_err();
    assert!(
        err.contains("record 0") && err.contains("field totalCount") && err.contains("\"lots\""),
        "{err}"
    );
    let err = one(&format!(r#"{{"timestamp":{T0},"errorCount":2.5}}"#)).unwrap_err();
    assert!(err.contains("expected an integer, got 2.5"), "{err}");
    let err = one(&format!(r#"{{"timestamp":{T0},"avgResponseTime":[1,2]}}"#)).unwrap_err();
    assert!(
        err.contains("field avgResponseTime: expected a number, got an array"),
        "{err}"
    );
    let err = one(&format!(r#"{{"timestamp":{T0},"ebBreached":"maybe"}}"#)).unwrap_err();
    assert!(err.contains("expected a boolean"), "{err}");
}

#[test]
fn time_falls_back_from_timestamp_to_key_to_timestamp_str() {
    let row = one(&format!(r#"{{"key":{T0}}}"#)).unwrap();
    assert_eq!(row.timestamp, Timestamp(T0));
    assert_eq!(row.key, Some(T0));
    // 2026-01-01 00:00 in Kolkata is 2025-12-31 18:30 UTC = T0.
    let row = one(r#"{"timestampStr":"2026-01-01 00:00:00","timezone":"Asia/Kolkata"}"#).unwrap();
    assert_eq!(row.timestamp, Timestamp(T0));
    let row = one(r#"{"timestampStr":"2025-12-31T18:30:00Z"}"#).unwrap();
    assert_eq!(row.timestamp, Timestamp(T0));
    let row = one(&format!(
        r#"{{"timestamp":"garbage","key":{}}}"#,
        T0 + 3_600_000
    ))
    .unwrap();
    assert_eq!(row.timestamp, Timestamp(T0 + 3_600_000));
}

#[test]
fn no_usable_time_is_an_error_for_that_record_only() {
    let msg = format!(
        r#"{{"transactionName":"GET /a","transactionSeries":[{{"totalCount":1}},{{"timestamp":{T0}}},{{"timestamp":1767205800,"timestampStr":"yesterday"}}]}}"#
    );
    let f = flatten_message(msg.as_bytes()).unwrap();
    assert_eq!(f.records, 3);
    assert_eq!(f.rows.len(), 1);
    assert_eq!(f.bad_records.len(), 2);
    assert_eq!(f.bad_records[0].index, 0);
    assert!(
        f.bad_records[0]
            .reason
            .starts_with("record 0: no usable time"),
        "{}",
        f.bad_records[0].reason
    );
    assert_eq!(f.bad_records[0].raw, r#"{"totalCount":1}"#);
    // Epoch seconds where milliseconds are due are not taken for a 1970 time.
    assert!(
        f.bad_records[1].reason.contains("timestamp \"1767205800\""),
        "{}",
        f.bad_records[1].reason
    );
}

#[test]
fn message_errors_say_what_is_wrong() {
    let err = |b: &[u8]| flatten_message(b).unwrap_err();
    assert!(matches!(err(b"not json"), MessageError::NotJson(_)));
    assert!(matches!(
        err(b"{\"transactionName\":\"x\""),
        MessageError::NotJson(_)
    ));
    assert!(matches!(err(b"[1,2]"), MessageError::NotATransaction(_)));
    assert_eq!(err(b"{\"transactionName\":\"x\"}"), MessageError::NoSeries);
    assert_eq!(
        err(b"{\"transactionSeries\":[]}"),
        MessageError::EmptySeries
    );
    let e = err(b"{\"transactionSeries\":{\"a\":1}}");
    assert!(
        e.to_string().contains("transactionSeries is not an array"),
        "{e}"
    );
    assert!(matches!(
        err(b"{\"a\":\"\xff\xfe\"}"),
        MessageError::NotJson(_)
    ));
}

#[test]
fn the_columns_sent_are_tracked() {
    assert_eq!(COLUMNS[TIMESTAMP_COLUMN].name, "timestamp");
    let msg = format!(
        r#"{{"transactionName":"x","transactionSeries":[{{"timestamp":{T0},"totalCount":1}},{{"key":{T0},"errorRate":null}}]}}"#
    );
    let f = flatten_message(msg.as_bytes()).unwrap();
    let sent: Vec<&str> = COLUMNS
        .iter()
        .enumerate()
        .filter(|(i, _)| f.present_columns & (1 << i) != 0)
        .map(|(_, c)| c.name)
        .collect();
    assert_eq!(sent, vec!["timestamp", "key", "total_count", "error_rate"]);
}

#[test]
fn unknown_fields_are_reported_as_drift() {
    let msg = format!(
        r#"{{"transactionName":"x","transactionSeries":[{{"timestamp":{T0},"brandNewField":1}}]}}"#
    );
    let f = flatten_message(msg.as_bytes()).unwrap();
    assert_eq!(f.rows.len(), 1);
    assert_eq!(
        f.unknown_fields.into_iter().collect::<Vec<_>>(),
        vec!["brandNewField".to_string()]
    );
}

/// The fast path, where it answers, agrees with the serde path row for row.
fn same_on_both_paths(text: &str) -> bool {
    let mut fast_rows = Vec::new();
    let fast = fast::flatten(text.as_bytes(), &mut |f| {
        fast_rows.push(MetricRow::from_fields(f))
    });
    let mut slow_rows = Vec::new();
    let slow = flatten_serde(text, |r| slow_rows.push(std::mem::take(r)));
    let Some(fast) = fast else {
        return false;
    };
    let slow = slow.unwrap_or_else(|e| panic!("fast path took what serde refused ({e}): {text}"));
    assert!(
        slow.bad_records.is_empty(),
        "fast path took a bad record: {text}"
    );
    assert_eq!(fast_rows, slow_rows, "rows differ for {text}");
    assert_eq!(fast.records, slow.records);
    assert_eq!(fast.good, slow.good);
    assert_eq!(fast.present_columns, slow.present_columns);
    assert_eq!(fast.unknown_fields, slow.unknown_fields);
    assert_eq!(fast.transaction_name, slow.transaction_name);
    true
}

/// The simulator's answer for this many transactions over 30 hours, one payload each.
fn sim_answer(transactions: usize) -> crate::source::api::Answer {
    // The simulator is a dev-dependency: its own copy of this crate's types.
    let mut cfg = wmtop_sim::SimConfig::new(Default::default());
    cfg.transactions = transactions;
    cfg.hours = 30;
    let body = wmtop_sim::full_answer(&cfg).unwrap();
    crate::source::api::split_answer(body.into()).unwrap()
}

#[test]
fn the_fast_path_takes_the_simulators_data_and_agrees_with_serde() {
    let answer = sim_answer(12);
    assert_eq!(answer.transactions.len(), 12);
    for tx in &answer.transactions {
        let text = std::str::from_utf8(&tx.payload).unwrap();
        assert!(
            same_on_both_paths(text),
            "the fast path gave up on clean data"
        );
    }
}

#[test]
fn rows_encoded_from_the_fast_path_are_the_bytes_the_serde_path_encodes() {
    use crate::clickhouse::compat::ServerVersion;
    use crate::clickhouse::load::Rows;
    use crate::clickhouse::table::{RowPlan, TableInfo};
    let answer = sim_answer(6);
    for version in ["18.16.1", "25.8.2.29"] {
        let version = ServerVersion::parse(version).unwrap();
        let plan = RowPlan::for_table("db.t", &TableInfo::own(version), version).unwrap();
        let (mut fast_rows, mut slow_rows) = (Rows::default(), Rows::default());
        for tx in &answer.transactions {
            let text = std::str::from_utf8(&tx.payload).unwrap();
            let taken = fast::flatten(&tx.payload, &mut |f| fast_rows.push_fields(&plan, f, 9));
            assert!(taken.is_some(), "the fast path gave up on clean data");
            flatten_serde(text, |r| slow_rows.push(&plan, r, 9)).unwrap();
        }
        assert_eq!(fast_rows.len(), answer.records());
        let keys = |r: &Rows| {
            r.meta
                .iter()
                .map(|m| (m.key.clone(), m.hash))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&fast_rows), keys(&slow_rows));
        assert_eq!(fast_rows.into_bytes(), slow_rows.into_bytes());
    }
}

#[test]
fn the_fast_path_agrees_or_gives_up_on_untidy_input() {
    let rec = |body: &str| {
        format!(
            r#"{{"transactionName":"GET /a","applicationId":31854,"transactionSeries":[{body}]}}"#
        )
    };
    let t = format!(r#""timestamp":{T0}"#);
    let taken = [
        rec(&format!(
            r#"{{{t},"successRate":"99.5","totalCount":"12"}}"#
        )),
        rec(&format!(
            r#"{{{t},"successRate":-0,"errorRate":-0.0,"totalCount":-0}}"#
        )),
        rec(&format!(
            r#"{{{t},"successRate":1.5e3,"errorRate":123456789012345678901234.5}}"#
        )),
        rec(&format!(
            r#"{{{t},"successRate":0.1,"errorRate":0.30000000000000004,"avgResponseTime":1e-7}}"#
        )),
        rec(&format!(
            r#"{{{t},"totalCount":9223372036854775807,"errorCount":-9223372036854775808,"successRate":18446744073709551616}}"#
        )),
        rec(&format!(
            r#"{{{t},"successRate":null,"ebBreached":true,"responseBreached":0,"timelinessHealth":"OK"}}"#
        )),
        rec(&format!(
            r#"{{ {t} , "newField" : 1 , "successRate" : 2 }} , {{{t},"successRate":3,"successRate":4}}"#
        )),
        rec(&format!(
            r#"{{{t},"transactionName":"GET /b","alias":17,"transactionId":-42,"applicationId":18446744073709551615}}"#
        )),
        format!(r#"{{"transactionSeries":[{{{t}}}],"transactionName":"late"}}"#),
        format!(" \n{}\t ", rec(&format!("{{{t}}}"))),
        rec(
            r#"{"key":1767205800000,"timestampStr":"2026-01-01 05:30:00","timezone":"Asia/Kolkata"}"#,
        ),
        rec(r#"{"timestampStr":"2026-01-01 05:30:00","timezone":"Asia/Kolkata"}"#),
        rec(&format!(r#"{{"timestamp":"{T0}"}}"#)),
        // Strings passed over eight bytes at a time: long, with multi-byte characters
        // before, across and after a word's edge.
        rec(&format!(
            r#"{{{t},"timelinessHealth":"HEALTHY but watched closely by the on-call team"}}"#
        )),
        rec(&format!(
            r#"{{{t},"timelinessHealth":"é","responseHealth":"Zürich straße","ebHealth":"abcdefg€h — ok ✓"}}"#
        )),
    ];
    for text in &taken {
        assert!(same_on_both_paths(text), "the fast path gave up on {text}");
    }
    let declined = [
        rec(&format!(r#"{{{t},"timelinessHealth":"O\u004b"}}"#)),
        // An escape or a control character past the first eight bytes of a string.
        rec(&format!(
            r#"{{{t},"timelinessHealth":"abcdefghijklmnopq\"rstuvwxyz"}}"#
        )),
        rec(&format!(
            r#"{{{t},"timelinessHealth":"Zürich straße\u00e9"}}"#
        )),
        rec(&format!(
            "{{{t},\"timelinessHealth\":\"abcdefghi{}jklmnopqrstuvwxyz\"}}",
            '\u{1f}'
        )),
        // Text the message does not hold as such: an identifier or a text given as a
        // number the serde path writes otherwise, a text given as a number or a flag.
        rec(&format!(r#"{{{t},"alias":1.50}}"#)),
        rec(&format!(r#"{{{t},"alias":-0}}"#)),
        rec(&format!(r#"{{{t},"timezone":5}}"#)),
        rec(&format!(r#"{{{t},"ebHealth":true}}"#)),
        rec(&format!(r#"{{{t},"nested":{{"a":1}}}}"#)),
        rec(&format!(r#"{{{t},"successRate":"abc"}}"#)),
        rec(&format!(r#"{{{t},"successRate":01}}"#)),
        rec(&format!(r#"{{{t},"successRate":1.}}"#)),
        rec(&format!(r#"{{{t},"successRate":+1}}"#)),
        rec(&format!(r#"{{{t},"successRate":.5}}"#)),
        rec(&format!(r#"{{{t},"successRate":1e}}"#)),
        rec(&format!("{{{t},\"timelinessHealth\":\"a{}b\"}}", '\u{1}')),
        rec(r#"{"successRate":1}"#),
        rec(&format!(r#"{{{t},"totalCount":18446744073709551616}}"#)),
        rec("7"),
        rec(""),
        format!("{} x", rec(&format!("{{{t}}}"))),
        rec(&format!("{{{t}}}")).replace("]}", "]"),
        format!(
            r#"{{"transactionName":"a","transactionSeries":[{{{t}}}],"transactionSeries":[{{{t}}}]}}"#
        ),
        r#"{"transactionName":"a","transactionSeries":null}"#.to_string(),
        r#"{"transactionName":"a"}"#.to_string(),
    ];
    for text in &declined {
        assert!(!same_on_both_paths(text), "the fast path took {text}");
    }
}

#[test]
fn bytes_that_are_not_utf8_make_the_message_unusable_on_either_path() {
    // A well-formed message (the fast path's kind) with one bad byte inside a value, and
    // the same byte inside a key.
    for (at, bad) in [
        ("GREEN", &b"GR\xffEN"[..]),
        ("ebHealth", &b"eb\xffHealth"[..]),
    ] {
        let text = format!(
            r#"{{"transactionName":"GET /a","transactionSeries":[{{"timestamp":{T0},"ebHealth":"GREEN"}}]}}"#
        );
        let at = text.find(at).unwrap();
        let mut payload = text.as_bytes()[..at].to_vec();
        payload.extend_from_slice(bad);
        payload.extend_from_slice(&text.as_bytes()[at + bad.len() - 1..]);
        let err = flatten_message(&payload).unwrap_err();
        assert!(
            matches!(&err, MessageError::NotJson(e) if e.starts_with("not UTF-8")),
            "{err:?}"
        );
    }
}

#[test]
fn a_key_one_byte_off_a_column_name_is_drift_on_the_fast_path_too() {
    // The first record teaches the fast path the order of its keys; in the second, the
    // keys in those places differ from the names by one byte: in the last few bytes, in
    // the first eight, and in a later group of eight.
    let first = format!(
        r#"{{"timestamp":{T0},"aspirationalEbActualConsumedPercent":1.5,"successRate":0.5,"aspirationalResponseConsumedCount":3}}"#
    );
    let second = format!(
        r#"{{"timestamp":{},"aspirationalEbActualConsumedPercenX":2.5,"suCcessRate":0.25,"aspirationalResponsEConsumedCount":4}}"#,
        T0 + 3_600_000
    );
    let text = format!(r#"{{"transactionName":"GET /a","transactionSeries":[{first},{second}]}}"#);
    assert!(same_on_both_paths(&text), "the fast path gave up");
    let f = flatten_message(text.as_bytes()).unwrap();
    assert_eq!(f.rows[0].aspirational_eb_actual_consumed_percent, Some(1.5));
    assert_eq!(f.rows[0].success_rate, Some(0.5));
    assert_eq!(f.rows[0].aspirational_response_consumed_count, Some(3));
    assert_eq!(f.rows[1].aspirational_eb_actual_consumed_percent, None);
    assert_eq!(f.rows[1].success_rate, None);
    assert_eq!(f.rows[1].aspirational_response_consumed_count, None);
    assert_eq!(
        f.unknown_fields.into_iter().collect::<Vec<_>>(),
        vec![
            "aspirationalEbActualConsumedPercenX".to_string(),
            "aspirationalResponsEConsumedCount".to_string(),
            "suCcessRate".to_string(),
        ]
    );
}

#[test]
fn a_strings_plain_run_stops_at_the_first_byte_that_ends_it() {
    // Every byte value at every place in a word of plain letters: flagged first there
    // exactly when it is a quote, a backslash, a control character or not ASCII.
    for byte in 0..=255u8 {
        let stops = byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte);
        for at in 0..8 {
            let mut word = *b"abcdefgh";
            word[at] = byte;
            let flags = super::fast::string_stops(u64::from_le_bytes(word));
            let first = (flags != 0).then(|| flags.trailing_zeros() as usize / 8);
            assert_eq!(first, stops.then_some(at), "byte {byte:#04x} at {at}");
        }
    }
    // Two stops: the first is found, whatever follows it.
    let flags = super::fast::string_stops(u64::from_le_bytes(*b"ab\"\0\x01\xff\\h"));
    assert_eq!(flags.trailing_zeros() / 8, 2);
}

#[test]
fn a_key_that_runs_on_past_a_column_name_is_drift_on_the_fast_path_too() {
    // The first record teaches the order; in the second the key in `successRate`'s place
    // runs one byte past the name, once with the rest of the message well beyond the
    // compared window and once within its last bytes.
    let first = format!(r#"{{"timestamp":{T0},"successRate":0.5,"totalCount":3}}"#);
    let second = format!(
        r#"{{"timestamp":{},"successRateX":0.25,"totalCount":4,"aspirationalEbActualConsumedPercent":1.5}}"#,
        T0 + 3_600_000
    );
    let third = format!(r#"{{"timestamp":{},"successRateY":1}}"#, T0 + 7_200_000);
    let text = format!(
        r#"{{"transactionName":"GET /a","transactionSeries":[{first},{second},{first},{third}]}}"#
    );
    assert!(same_on_both_paths(&text), "the fast path gave up");
    let f = flatten_message(text.as_bytes()).unwrap();
    assert_eq!(f.rows[0].success_rate, Some(0.5));
    assert_eq!(f.rows[1].success_rate, None);
    assert_eq!(f.rows[1].total_count, Some(4));
    assert_eq!(f.rows[3].success_rate, None);
    assert_eq!(
        f.unknown_fields.into_iter().collect::<Vec<_>>(),
        vec!["successRateX".to_string(), "successRateY".to_string()]
    );
}
