//! Fuzz target `model_events`; the check itself is in `fuzz/common/model_events.rs`, shared with
//! `tests/fuzz_corpus.rs`.

#![no_main]

#[path = "../common/model_events.rs"]
mod model_events;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = model_events::check(data);
});
