//! Fuzz target `journal_record`; the check itself is in `fuzz/common/journal_record.rs`, shared with
//! `tests/fuzz_corpus.rs`.

#![no_main]

#[path = "../common/journal_record.rs"]
mod journal_record;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = journal_record::check(data);
});
