//! Flattening: one Kafka message (a transaction object with its `transactionSeries`) into
//! one [`MetricRow`] per hourly record. Lenient where real payloads are untidy (missing
//! fields, nulls, numbers sent as strings), strict where data would be lost: a value of
//! the wrong type or a record with no usable time is an error for that record, with its
//! reason, never a silent null and never an error for the whole batch.

mod fast;
mod record;
mod serde_path;

use crate::record::columns::{Fields, MetricRow};
pub use crate::record::value::{Convert, Value};
pub use record::{BadRecord, Flattened, MessageError};

/// Flattens one message. A message error means nothing in it could be used; otherwise
/// every record is either a row or a [`BadRecord`] with its reason.
pub fn flatten_message(payload: &[u8]) -> Result<Flattened, MessageError> {
    let mut rows = Vec::new();
    let mut out = flatten_each(payload, |row| rows.push(std::mem::take(row)))?;
    out.rows = rows;
    Ok(out)
}

/// Flattens one message like [`flatten_message`], handing each row to `each` as it is
/// made instead of collecting them.
pub fn flatten_each(
    payload: &[u8],
    mut each: impl FnMut(&mut MetricRow),
) -> Result<Flattened, MessageError> {
    if let Some(done) = fast::flatten(payload, &mut |f| each(&mut MetricRow::from_fields(f))) {
        return Ok(done);
    }
    serde_path::flatten_serde(utf8(payload)?, each)
}

/// Flattens one message like [`flatten_each`], handing each row over as values borrowed
/// from the message: the consumer encodes them straight into its insert, with no row
/// of its own made in between.
pub fn flatten_fields(
    payload: &[u8],
    mut each: impl FnMut(&Fields<'_>),
) -> Result<Flattened, MessageError> {
    if let Some(done) = fast::flatten(payload, &mut each) {
        return Ok(done);
    }
    serde_path::flatten_serde(utf8(payload)?, |row| each(&row.fields()))
}

fn utf8(payload: &[u8]) -> Result<&str, MessageError> {
    std::str::from_utf8(payload).map_err(|e| MessageError::NotJson(format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests;
