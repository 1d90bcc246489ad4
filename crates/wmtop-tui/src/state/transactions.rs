//! The transactions pane's state: per transaction what the API served (and set aside),
//! messages produced, what the last load took in and what a plain count finds stored;
//! the verdict drawn from those figures (or from the last reconciliation while it is
//! current); the name filter, the sort and the selection.

use std::collections::BTreeMap;

use tui_input::Input;
use wmtop_core::clickhouse::Stored;
use wmtop_core::source::api::Accounting;
use wmtop_core::tools::check::{Report, TransactionCheck};

/// One transaction's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxRow {
    /// Records the last fetch served, and how many of them are set aside.
    pub api: Option<Accounting>,
    /// Messages published this run.
    pub produced: u64,
    /// Records the last load took in (written, or already stored the same).
    pub loaded: u64,
    /// Rows stored and distinct records, as a plain query counts them.
    pub stored: Option<Stored>,
}

/// A transaction's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxStatus {
    Unknown,
    Loading,
    /// Stored as served; `n` records set aside (each with its reason).
    Ok(u64),
    /// Records served (and loadable) that are not stored.
    Missing(u64),
    /// Distinct records stored beyond what the API served.
    Extra(u64),
    /// The last reconciliation found hours missing.
    Gaps(u64),
    /// Rows stored beyond one per record: what a plain query counts twice.
    Dups(u64),
}

impl TxStatus {
    pub fn label(self) -> String {
        match self {
            TxStatus::Unknown => "-".into(),
            TxStatus::Loading => "loading".into(),
            TxStatus::Ok(0) => "ok".into(),
            TxStatus::Ok(n) => format!("ok, {n} set aside"),
            TxStatus::Missing(n) => format!("MISSING {n}"),
            TxStatus::Extra(n) => format!("EXTRA {n}"),
            TxStatus::Gaps(n) => format!("GAPS {n}"),
            TxStatus::Dups(n) => format!("DUPS {n}"),
        }
    }

    /// Something a user must look at.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            TxStatus::Missing(_) | TxStatus::Extra(_) | TxStatus::Gaps(_) | TxStatus::Dups(_)
        )
    }
}

/// Transactions pane columns; every one sorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxColumn {
    Name,
    Api,
    Produced,
    Loaded,
    Stored,
    Distinct,
    Status,
}

impl TxColumn {
    pub const ALL: [TxColumn; 7] = [
        TxColumn::Name,
        TxColumn::Api,
        TxColumn::Produced,
        TxColumn::Loaded,
        TxColumn::Stored,
        TxColumn::Distinct,
        TxColumn::Status,
    ];

    pub fn title(self) -> &'static str {
        match self {
            TxColumn::Name => "Transaction",
            TxColumn::Api => "API",
            TxColumn::Produced => "Msgs",
            TxColumn::Loaded => "Loaded",
            TxColumn::Stored => "Stored",
            TxColumn::Distinct => "Distinct",
            TxColumn::Status => "Status",
        }
    }
}

/// A reconciliation's findings per transaction, or why it failed.
pub type CheckResult = Result<BTreeMap<String, TransactionCheck>, String>;

/// What the verdicts depend on beyond the pane's own figures.
#[derive(Clone, Copy, Debug)]
pub struct Quiet {
    /// Nothing is loading: no reload or merge running, lag known and zero, no flush in
    /// the last seconds.
    pub quiet: bool,
    /// When the newest flush landed.
    pub last_flush: Option<jiff::Timestamp>,
}

/// The transactions pane.
pub struct TxState {
    pub rows: BTreeMap<String, TxRow>,
    pub sort: (TxColumn, bool),
    pub filter: Input,
    /// The filter is being typed.
    pub filtering: bool,
    pub selected: usize,
    /// When rows stored per transaction were last counted.
    pub counts_at: Option<jiff::Timestamp>,
    /// The last reconciliation: per transaction, and when it was taken.
    pub check: Option<(jiff::Timestamp, CheckResult)>,
}

impl Default for TxState {
    fn default() -> Self {
        TxState {
            rows: BTreeMap::new(),
            sort: (TxColumn::Name, false),
            filter: Input::default(),
            filtering: false,
            selected: 0,
            counts_at: None,
            check: None,
        }
    }
}

impl TxState {
    /// A fetch: what each transaction served replaces the last fetch's figures.
    pub fn on_fetched(&mut self, per_transaction: Vec<(String, Accounting)>) {
        for row in self.rows.values_mut() {
            row.api = None;
            row.loaded = 0;
        }
        for (name, records) in per_transaction {
            self.rows.entry(name).or_default().api = Some(records);
        }
    }

    pub fn on_published(&mut self, per_transaction: Vec<(String, u64)>) {
        for (name, n) in per_transaction {
            self.rows.entry(name).or_default().produced += n;
        }
    }

    pub fn on_loaded(&mut self, per_transaction: Vec<(String, u64)>) {
        for (name, n) in per_transaction {
            self.rows.entry(name).or_default().loaded += n;
        }
    }

    /// Plain counts per transaction; a transaction missing from them has nothing stored.
    pub fn on_counts(&mut self, counts: BTreeMap<String, Stored>) {
        self.counts_at = Some(jiff::Timestamp::now());
        for row in self.rows.values_mut() {
            row.stored = Some(Stored::default());
        }
        for (name, n) in counts {
            self.rows.entry(name).or_default().stored = Some(n);
        }
    }

    pub fn on_checked(&mut self, report: Result<Report, String>) {
        let at = jiff::Timestamp::now();
        self.check = Some((
            at,
            report.map(|r| {
                r.transactions
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect()
            }),
        ));
    }

    /// A transaction's verdict from plain counts: stored rows and distinct records
    /// against the records the API served minus those set aside.
    pub fn status(tx: &TxRow, quiet: Quiet) -> TxStatus {
        let (Some(api), Some(stored)) = (tx.api, tx.stored) else {
            return if tx.api.is_some() {
                TxStatus::Loading
            } else {
                TxStatus::Unknown
            };
        };
        if stored.copies() > 0 && quiet.quiet {
            return TxStatus::Dups(stored.copies());
        }
        let want = api.loadable();
        if stored.distinct == want && stored.copies() == 0 {
            return TxStatus::Ok(api.set_aside);
        }
        match (stored.distinct < want, quiet.quiet) {
            (_, false) => TxStatus::Loading,
            (true, true) => TxStatus::Missing(want - stored.distinct),
            (false, true) if stored.distinct > want => TxStatus::Extra(stored.distinct - want),
            (false, true) => TxStatus::Dups(stored.copies()),
        }
    }

    /// The verdict shown: the last reconciliation's finding when it found a problem and
    /// nothing was loaded since; otherwise the counts' verdict.
    pub fn verdict(&self, name: &str, tx: &TxRow, quiet: Quiet) -> TxStatus {
        if let Some((at, Ok(checks))) = &self.check {
            let fresh = quiet.last_flush.is_none_or(|f| f <= *at);
            if let Some(c) = checks.get(name).filter(|_| fresh) {
                if c.counts.copies > 0 {
                    return TxStatus::Dups(c.counts.copies);
                }
                if c.counts.gaps > 0 {
                    return TxStatus::Gaps(c.counts.gaps);
                }
            }
        }
        Self::status(tx, quiet)
    }

    /// The transactions shown: filtered by name, sorted by the chosen column.
    pub fn visible(&self, quiet: Quiet) -> Vec<(&String, &TxRow, TxStatus)> {
        let needle = self.filter.value().to_lowercase();
        let mut rows: Vec<_> = self
            .rows
            .iter()
            .filter(|(name, _)| needle.is_empty() || name.to_lowercase().contains(&needle))
            .map(|(n, t)| (n, t, self.verdict(n, t, quiet)))
            .collect();
        let (col, rev) = self.sort;
        rows.sort_by(|a, b| {
            let ord = match col {
                TxColumn::Name => a.0.cmp(b.0),
                TxColumn::Api => a.1.api.map(|x| x.served).cmp(&b.1.api.map(|x| x.served)),
                TxColumn::Produced => a.1.produced.cmp(&b.1.produced),
                TxColumn::Loaded => a.1.loaded.cmp(&b.1.loaded),
                TxColumn::Stored => a.1.stored.map(|x| x.rows).cmp(&b.1.stored.map(|x| x.rows)),
                TxColumn::Distinct => {
                    a.1.stored
                        .map(|x| x.distinct)
                        .cmp(&b.1.stored.map(|x| x.distinct))
                }
                TxColumn::Status => a.2.cmp(&b.2),
            }
            .then_with(|| a.0.cmp(b.0));
            if rev {
                ord.reverse()
            } else {
                ord
            }
        });
        rows
    }

    /// The transaction under the cursor, if any.
    pub fn selected_name(&self, quiet: Quiet) -> Option<String> {
        let rows = self.visible(quiet);
        rows.get(self.selected.min(rows.len().saturating_sub(1)))
            .map(|(n, _, _)| (*n).clone())
    }

    pub fn next_sort(&mut self) {
        let i = TxColumn::ALL
            .iter()
            .position(|c| *c == self.sort.0)
            .unwrap_or(0);
        self.sort = (TxColumn::ALL[(i + 1) % TxColumn::ALL.len()], false);
    }
}
