//! The `journal_record` check, shared by the fuzz target (`fuzz/fuzz_targets/journal_record.rs`)
//! and the corpus test (`tests/fuzz_corpus.rs`), which include this file with `#[path]`.
//!
//! Bytes that decode as a journal [`Record`] must encode and decode back to the same record,
//! and replaying the record (as `starrocks-operator replay` does with a journal read from
//! disk, possibly hand-edited or corrupt) may refuse it but must not panic.

use starrocks_model::journal::{self, Record};

/// Runs the check on `data`; returns whether it decoded as a record.
pub fn check(data: &[u8]) -> bool {
    let Ok(record) = serde_json::from_slice::<Record>(data) else {
        return false;
    };
    let encoded = match serde_json::to_vec(&record) {
        Ok(encoded) => encoded,
        Err(e) => panic!("a decoded record does not encode: {e}\n{record:?}"),
    };
    match serde_json::from_slice::<Record>(&encoded) {
        Ok(again) => assert_eq!(
            again,
            record,
            "a record changed on its way through JSON: {}",
            String::from_utf8_lossy(&encoded)
        ),
        Err(e) => panic!(
            "a record's own encoding does not decode: {e}\n{}",
            String::from_utf8_lossy(&encoded)
        ),
    }
    // Divergence is an answer, not a failure: the record came from anywhere.
    let _ = journal::replay([&record]);
    true
}
