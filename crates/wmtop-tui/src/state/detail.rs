//! The transaction detail view's state: the transaction asked about, what the pipeline
//! found for it (hours from the API, the topic and ClickHouse; its messages; the records
//! as the topic holds them next to their stored rows; what was set aside), and the hour
//! selected. It is dropped when the view closes, so nothing fetched for it is kept.

use wmtop_core::tools::inspect::TransactionDetail;

/// The detail view.
pub struct DetailState {
    pub name: String,
    /// None while it is looked up.
    pub found: Option<Result<TransactionDetail, String>>,
    /// Index into the hours.
    pub hour: usize,
    /// Lines scrolled in the record panes.
    pub scroll: u16,
}

impl DetailState {
    pub fn new(name: String) -> DetailState {
        DetailState {
            name,
            found: None,
            hour: 0,
            scroll: 0,
        }
    }

    /// What the pipeline found; the newest hour with a record is selected.
    pub fn on_inspected(&mut self, found: Result<TransactionDetail, String>) {
        if let Ok(d) = &found {
            self.hour = d
                .hours
                .iter()
                .rposition(|h| h.topic > 0)
                .unwrap_or(d.hours.len().saturating_sub(1));
        }
        self.found = Some(found);
        self.scroll = 0;
    }

    pub fn detail(&self) -> Option<&TransactionDetail> {
        self.found.as_ref().and_then(|f| f.as_ref().ok())
    }

    pub fn step_hour(&mut self, delta: isize) {
        let Some(d) = self.detail() else { return };
        let n = d.hours.len();
        self.hour = (self.hour as isize + delta).clamp(0, n.saturating_sub(1) as isize) as usize;
        self.scroll = 0;
    }

    /// The selected hour (epoch ms).
    pub fn hour_ms(&self) -> Option<i64> {
        self.detail()?.hours.get(self.hour).map(|h| h.hour_ms)
    }

    /// The selected hour's record as the topic holds it, pretty-printed.
    pub fn record_json(&self) -> Option<String> {
        let raw = self.detail()?.records.get(&self.hour_ms()?)?;
        Some(pretty(raw))
    }

    /// The selected hour's stored rows, pretty-printed (more than one is a copy).
    pub fn rows_json(&self) -> Vec<String> {
        let Some(h) = self.hour_ms() else {
            return Vec::new();
        };
        self.detail()
            .and_then(|d| d.rows.get(&h))
            .map(|rows| rows.iter().map(|r| pretty(r)).collect())
            .unwrap_or_default()
    }
}

/// JSON text indented, keys in the order sent.
fn pretty(raw: &str) -> String {
    crate::text::pretty_json(raw)
}
