//! The reference users' common queries (contract section 5), written once so that the
//! query pane, the headless `query` command and the modern-engine test share them. Each
//! is plain SQL that runs on ClickHouse 18.16 and on modern servers alike (no `WITH`
//! subqueries, no query parameters), reads the table plainly (no `FINAL`: what any
//! dashboard sees, which wmtop keeps at one row per record) and only the settings'
//! application in their window, through the table's key (`{w}`), and takes "the last 7
//! days" relative to the newest data there.

/// How the presets read, said next to them on screen and in the README.
pub const READS: &str = "plain reads, no FINAL: every stored row counts, as in any dashboard";

/// One preset query.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub key: &'static str,
    pub title: &'static str,
    template: &'static str,
}

/// The presets, in the order the reference lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        key: "rows",
        title: "Row count by transaction",
        template: "SELECT transaction_name, count() AS rows FROM {t} WHERE {w} GROUP BY transaction_name ORDER BY transaction_name",
    },
    Preset {
        key: "avg7d",
        title: "Average response time by transaction, last 7 days of data",
        template: "SELECT transaction_name, round(avg(avg_response_time), 2) AS avg_response_ms, sum(total_count) AS requests \
                   FROM {t} WHERE {w} AND timestamp >= (SELECT max(timestamp) FROM {t} WHERE {w}) - INTERVAL 7 DAY \
                   GROUP BY transaction_name ORDER BY avg_response_ms DESC",
    },
    Preset {
        key: "p95",
        title: "Hourly p95/p99 for one transaction",
        template: "SELECT toStartOfHour(timestamp) AS hour, max(percentile_95) AS p95, max(percentile_99) AS p99 \
                   FROM {t} WHERE {w} AND transaction_name = {name} GROUP BY hour ORDER BY hour",
    },
    Preset {
        key: "health",
        title: "Error-budget health overview",
        template: "SELECT eb_health, count() AS records, uniqExact(transaction_name) AS transactions, \
                   round(avg(eb_consumed_percent), 2) AS avg_eb_consumed_percent \
                   FROM {t} WHERE {w} GROUP BY eb_health ORDER BY records DESC",
    },
    Preset {
        key: "errors",
        title: "Transactions whose average error rate is above 1%",
        template: "SELECT transaction_name, round(avg(error_rate), 3) AS avg_error_rate, sum(error_count) AS errors \
                   FROM {t} WHERE {w} GROUP BY transaction_name HAVING avg(error_rate) > 1 ORDER BY avg_error_rate DESC",
    },
];

/// A ClickHouse string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for ch in s.chars() {
        match ch {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

impl Preset {
    /// The SQL for table `db.table`, reading the rows `window` selects
    /// ([`super::sql::window_of`]); `transaction` fills the one-transaction query.
    pub fn sql(&self, qualified_table: &str, window: &str, transaction: &str) -> String {
        self.template
            .replace("{t}", qualified_table)
            .replace("{w}", window)
            .replace("{name}", &quote(transaction))
    }
}

/// Finds a preset by its key.
pub fn preset(key: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_fill_table_and_quote_names() {
        let sql = preset("p95")
            .unwrap()
            .sql("db.t", "application_id = '7'", "GET /a'b");
        assert!(
            sql.contains("FROM db.t WHERE application_id = '7' AND"),
            "{sql}"
        );
        assert!(sql.contains("transaction_name = 'GET /a\\'b'"));
        assert_eq!(PRESETS.len(), 5);
        for p in PRESETS {
            let sql = p.sql("db.t", "W", "x");
            assert!(!sql.contains('{'), "{} left a placeholder", p.key);
            // Every read of the table goes through the window.
            assert_eq!(
                sql.matches("FROM db.t").count(),
                sql.matches("FROM db.t WHERE W").count(),
                "{sql}"
            );
        }
    }
}
