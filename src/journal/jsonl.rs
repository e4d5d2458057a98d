//! JSON Lines export and import of journal records: one [`Record`] per line, as serde_json
//! writes it (camelCase fields, `format` first), in sequence order.

use super::JournalError;
use starrocks_model::journal::Record;
use std::io::{BufRead, Write};

/// Writes `records` to `out`, one JSON object per line, each line ending in `\n`.
///
/// # Errors
/// [`JournalError::Encode`] for a record that does not encode; [`JournalError::Io`] when
/// writing fails (`path` in the error is `output`).
pub fn export<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    mut out: impl Write,
) -> Result<(), JournalError> {
    let io = |source| JournalError::Io {
        action: "writing",
        path: "output".into(),
        source,
    };
    for record in records {
        let line = serde_json::to_string(record).map_err(|source| JournalError::Encode {
            seq: record.seq,
            source,
        })?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Reads records from JSON Lines text; blank lines are skipped. `source_name` names the input
/// in errors (a file name, or `stdin`).
///
/// # Errors
/// [`JournalError::BadLine`] with the 1-based line number of the first line that is not a
/// record; [`JournalError::Io`] when reading fails.
pub fn import(input: impl BufRead, source_name: &str) -> Result<Vec<Record>, JournalError> {
    let mut records = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|source| JournalError::Io {
            action: "reading",
            path: source_name.into(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| JournalError::BadLine {
            source_name: source_name.to_string(),
            line: index + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}
