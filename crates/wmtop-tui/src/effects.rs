//! What the TUI does outside its state, kept out of it: sending commands to the
//! pipeline, reading and saving the query history, writing exports (never over an
//! earlier file), and copying to the clipboard with OSC 52, which travels through ssh
//! and tmux (`set-clipboard on`) to the terminal the user sits at.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use wmtop_core::clickhouse::QueryResult;
use wmtop_core::runtime::monitor::Command;

/// An export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180, NULL as an empty field.
    Csv,
    /// One object per row, typed values, the query's column order.
    JsonLines,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

/// Something to do outside the state.
#[derive(Clone, Debug)]
pub enum Effect {
    /// A command for the pipeline.
    Send(Command),
    /// Save the query history (oldest first).
    SaveHistory(Vec<String>),
    /// Write a query result to a new file.
    Export { format: Format, result: QueryResult },
    /// Put text on the clipboard; `what` names it for the message.
    Copy { what: String, text: String },
}

/// The query history saved by earlier runs, oldest first; none when there is no file.
pub fn load_history(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Saves the history, one query a line.
pub fn save_history(path: &Path, history: &[String]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text: String = history
        .iter()
        .map(|q| format!("{}\n", q.replace('\n', " ")))
        .collect();
    std::fs::write(path, text)
}

/// Writes `result` to a new file in `dir` named by the time (`query-20261123T101500Z`),
/// with `-2`, `-3`… added when that name is taken, so no export overwrites another.
pub fn export(dir: &Path, format: Format, result: &QueryResult) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let body = match format {
        Format::Csv => result.to_csv(false),
        Format::JsonLines => result.to_json_lines(),
    };
    for n in 1u32.. {
        let name = if n == 1 {
            format!("query-{stamp}.{}", format.extension())
        } else {
            format!("query-{stamp}-{n}.{}", format.extension())
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(body.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free export file name"))
}

/// The OSC 52 sequence that puts `text` on the clipboard.
pub fn osc52(text: &str) -> String {
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// Writes the OSC 52 sequence for `text` to the terminal.
pub fn copy(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> QueryResult {
        QueryResult::from_json_compact(
            br#"{"meta":[{"name":"z","type":"String"},{"name":"n","type":"UInt64"},{"name":"ok","type":"Bool"},{"name":"x","type":"Nullable(Float64)"}],"data":[["a","1",true,null],["b","22",false,0.5]]}"#,
        )
        .unwrap()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wmtop-effects-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn json_exports_are_typed_in_column_order_with_a_final_newline() {
        let d = dir("json");
        let path = export(&d, Format::JsonLines, &result()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"z\":\"a\",\"n\":1,\"ok\":true,\"x\":null}\n{\"z\":\"b\",\"n\":22,\"ok\":false,\"x\":0.5}\n"
        );
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["n"].is_u64());
        }
    }

    #[test]
    fn csv_exports_write_null_as_an_empty_field() {
        let d = dir("csv");
        let path = export(&d, Format::Csv, &result()).unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "z,n,ok,x\na,1,true,\nb,22,false,0.5\n"
        );
    }

    #[test]
    fn two_exports_in_one_second_give_two_files() {
        let d = dir("twice");
        let r = result();
        let a = export(&d, Format::Csv, &r).unwrap();
        let b = export(&d, Format::Csv, &r).unwrap();
        let c = export(&d, Format::Csv, &r).unwrap();
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 3);
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            std::fs::read_to_string(&c).unwrap()
        );
    }

    #[test]
    fn history_survives_a_restart() {
        let d = dir("history");
        let path = d.join("query_history");
        assert!(load_history(&path).is_empty());
        save_history(&path, &["SELECT 1".into(), "SELECT\n2".into()]).unwrap();
        assert_eq!(load_history(&path), vec!["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn osc52_carries_the_text_in_base64() {
        assert_eq!(osc52("GET /a"), "\x1b]52;c;R0VUIC9h\x07");
    }
}
