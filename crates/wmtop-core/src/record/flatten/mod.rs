//! Flattening: one Kafka message (a transaction object with its `transactionSeries`) into
//! one [`MetricRow`] per hourly record. Lenient where real payloads are untidy (missing
//! fields, nulls, numbers sent as strings), strict where data would be lost: a value of
//! the wrong type or a record with no usable time is an error for that record, with its
//! reason, never a silent null and never an error for the whole batch.

mod fast;
mod record;
mod serde_path;

use crate::record::columns::MetricRow;
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
/// made instead of collecting them (the consumer encodes rows straight into its insert).
pub fn flatten_each(
    payload: &[u8],
    mut each: impl FnMut(&mut MetricRow),
) -> Result<Flattened, MessageError> {
    if let Some(done) = fast::flatten(payload, &mut each) {
        return Ok(done);
    }
    let text = std::str::from_utf8(payload)
        .map_err(|e| MessageError::NotJson(format!("not UTF-8: {e}")))?;
    serde_path::flatten_serde(text, each)
}

#[cfg(test)]
mod tests;
