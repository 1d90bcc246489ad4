//! Row plans from table descriptions, and the bytes they write.

use super::*;
use crate::clickhouse::compat::metrics_ddl;
use crate::record::columns::{MetricRow, Timestamp};

fn v(text: &str) -> ServerVersion {
    ServerVersion::parse(text).unwrap()
}

fn own_table(version: ServerVersion) -> TableInfo {
    TableInfo::own(version)
}

fn row() -> MetricRow {
    MetricRow {
        no_data_found: Some(false),
        transaction_name: "GET /a".into(),
        timestamp: Timestamp(1_767_205_800_123),
        total_count: Some(-12),
        success_rate: Some(99.5),
        timeliness_health: Some("OK".into()),
        eb_breached: Some(true),
        ..MetricRow::default()
    }
}

#[test]
fn the_own_table_on_a_modern_server_gets_rowbinary_column_by_column() {
    let info = own_table(v("25.8"));
    let plan = RowPlan::for_table("db.t", &info, v("25.8")).unwrap();
    assert!(plan.versioned && plan.replacing && plan.absent.is_empty());
    assert!(plan
        .insert_sql
        .starts_with("INSERT INTO db.t (no_data_found, transaction_name,"));
    assert!(plan
        .insert_sql
        .ends_with("percentile_99, record_version, record_hash) FORMAT RowBinary"));
    let mut out = Vec::new();
    plan.encode(&row().fields(), &mut out);
    // Nullable is a 0 (value follows) or 1 (NULL) byte; String a LEB128 length and the
    // bytes; numbers little-endian; DateTime64(3) milliseconds as i64.
    let mut want: Vec<u8> = vec![0, 0]; // no_data_found: Some(false)
    want.extend([6]);
    want.extend(b"GET /a");
    want.extend([0, 0, 0, 0]); // the other identifiers: ""
    want.extend(1_767_205_800_123i64.to_le_bytes());
    for c in &COLUMNS[7..] {
        match c.name {
            "total_count" => {
                want.push(0);
                want.extend((-12i64).to_le_bytes());
            }
            "success_rate" => {
                want.push(0);
                want.extend(99.5f64.to_le_bytes());
            }
            "timeliness_health" => want.extend([0, 2, b'O', b'K']),
            "eb_breached" => want.extend([0, 1]),
            _ => want.push(1),
        }
    }
    assert_eq!(out, want);
    assert!(metrics_ddl("db", "t", v("25.8")).contains("record_hash UInt64"));
}

#[test]
fn old_servers_get_seconds_and_bytes_for_flags() {
    let info = own_table(v("18.16"));
    let plan = RowPlan::for_table("db.t", &info, v("18.16")).unwrap();
    let ts = plan
        .columns
        .iter()
        .find(|(i, _)| COLUMNS[*i].name == "timestamp")
        .unwrap();
    assert_eq!(ts.1, Writer::DateTime);
    let mut out = Vec::new();
    Writer::DateTime.write(FieldRef::Time(1_767_205_800_999), &mut out);
    assert_eq!(out, 1_767_205_800u32.to_le_bytes());
    let mut out = Vec::new();
    Writer::Flag { nullable: true }.write(FieldRef::Flag(Some(true)), &mut out);
    assert_eq!(out, [0, 1]);
}

#[test]
fn an_existing_table_with_other_types_is_written_in_its_own_types() {
    let mut info = own_table(v("25.8"));
    let set = |info: &mut TableInfo, name: &str, type_: &str| {
        info.columns
            .iter_mut()
            .find(|c| c.name == name)
            .unwrap()
            .type_ = type_.into();
    };
    set(&mut info, "total_count", "Float64");
    set(&mut info, "timestamp", "DateTime64(6, 'UTC')");
    set(&mut info, "success_rate", "Float32");
    set(&mut info, "transaction_name", "String");
    set(&mut info, "timeliness_health", "String");
    info.columns
        .retain(|c| c.name != "percentile_99" && c.name != "record_hash");
    info.columns.push(TableColumn {
        name: "region".into(),
        type_: "LowCardinality(String)".into(),
        has_default: true,
        in_key: false,
    });
    let plan = RowPlan::for_table("db.t", &info, v("25.8")).unwrap();
    assert_eq!(plan.absent, vec!["percentile_99"]);
    assert!(!plan.versioned, "record_hash is gone");
    assert!(!plan.insert_sql.contains("region") && !plan.insert_sql.contains("percentile_99"));
    let writer = |name: &str| {
        plan.columns
            .iter()
            .find(|(i, _)| COLUMNS[*i].name == name)
            .unwrap()
            .1
    };
    assert_eq!(writer("timestamp"), Writer::DateTime64 { precision: 6 });
    let mut out = Vec::new();
    writer("timestamp").write(FieldRef::Time(1_767_205_800_123), &mut out);
    assert_eq!(out, 1_767_205_800_123_000i64.to_le_bytes());
    let mut out = Vec::new();
    writer("total_count").write(FieldRef::Int(Some(7)), &mut out);
    assert_eq!(out, 7f64.to_le_bytes());
    let mut out = Vec::new();
    writer("timeliness_health").write(FieldRef::Text(None), &mut out);
    assert_eq!(out, [0], "NULL into a String column is the empty string");
    let mut out = Vec::new();
    writer("success_rate").write(FieldRef::Float(Some(99.5)), &mut out);
    assert_eq!(out, 99.5f32.to_le_bytes());
}

#[test]
fn what_cannot_be_written_is_named_before_any_insert() {
    let mut info = own_table(v("25.8"));
    info.columns
        .iter_mut()
        .find(|c| c.name == "error_rate")
        .unwrap()
        .type_ = "Decimal(10, 2)".into();
    let err = RowPlan::for_table("db.t", &info, v("25.8"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "table db.t: column error_rate has type Decimal(10, 2), which wmtop cannot write a number (Float64) into"
    );
    let mut info = own_table(v("25.8"));
    info.columns.retain(|c| c.name != "timestamp");
    let err = RowPlan::for_table("db.t", &info, v("25.8"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no column timestamp"), "{err}");
    let mut info = own_table(v("25.8"));
    info.columns.push(TableColumn {
        name: "tenant".into(),
        type_: "String".into(),
        has_default: false,
        in_key: true,
    });
    let err = RowPlan::for_table("db.t", &info, v("25.8"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("column tenant is in the table's key"), "{err}");
}

#[test]
fn on_old_servers_the_body_starts_with_a_zero_or_one_byte() {
    let mut info = own_table(v("18.16"));
    // A table whose first column is a String (a length byte could be whitespace).
    let first = info.columns.remove(0);
    info.columns.push(first);
    info.columns
        .iter_mut()
        .find(|c| c.name == "no_data_found")
        .unwrap()
        .type_ = "UInt8".into();
    let plan = RowPlan::for_table("db.t", &info, v("18.16")).unwrap();
    assert!(matches!(
        plan.columns[0].1,
        Writer::Flag { .. }
            | Writer::String { nullable: true }
            | Writer::Int64 { nullable: true }
            | Writer::Float64 { nullable: true }
    ));
}

#[test]
fn a_row_of_long_strings_and_narrow_values_is_encoded_exactly() {
    // Room is counted once for the row: strings whose lengths take one, two and three
    // bytes of LEB128, beside values narrower than eight bytes.
    let mut info = own_table(v("25.8"));
    let keep = [
        "transaction_name",
        "application_id",
        "timestamp",
        "success_rate",
        "timeliness_health",
        "response_health",
        "eb_breached",
    ];
    info.columns.retain(|c| keep.contains(&c.name.as_str()));
    for c in &mut info.columns {
        match c.name.as_str() {
            "timestamp" => c.type_ = "DateTime".into(),
            "success_rate" => c.type_ = "Nullable(Float32)".into(),
            "timeliness_health" => c.type_ = "String".into(),
            "response_health" => c.type_ = "Nullable(String)".into(),
            _ => {}
        }
    }
    let plan = RowPlan::for_table("db.t", &info, v("25.8")).unwrap();
    assert_eq!(plan.columns.len(), keep.len());
    let (long, edge, short) = ("n".repeat(16_384), "e".repeat(128), "s".repeat(127));
    let row = MetricRow {
        transaction_name: long.as_str().into(),
        application_id: "31854".into(),
        timestamp: Timestamp(1_767_205_800_999),
        success_rate: Some(99.5),
        timeliness_health: Some(short.as_str().into()),
        response_health: Some(edge.as_str().into()),
        eb_breached: None,
        ..MetricRow::default()
    };
    let mut out = vec![7u8; 3];
    plan.encode(&row.fields(), &mut out);
    let mut want = vec![7u8; 3];
    for (i, _) in &plan.columns {
        match COLUMNS[*i].name {
            "transaction_name" => {
                want.extend([0x80, 0x80, 0x01]);
                want.extend(long.as_bytes());
            }
            "application_id" => want.extend(b"\x0531854"),
            "timestamp" => want.extend(1_767_205_800u32.to_le_bytes()),
            "success_rate" => {
                want.push(0);
                want.extend(99.5f32.to_le_bytes());
            }
            "timeliness_health" => {
                want.push(127);
                want.extend(short.as_bytes());
            }
            "response_health" => {
                want.extend([0, 0x80, 0x01]);
                want.extend(edge.as_bytes());
            }
            "eb_breached" => want.push(1),
            other => panic!("unexpected column {other}"),
        }
    }
    assert_eq!(out.len(), want.len());
    assert_eq!(out, want);
}
