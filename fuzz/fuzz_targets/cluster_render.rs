//! Fuzz target `cluster_render`; the check itself is in `fuzz/common/cluster_render.rs`, shared with
//! `tests/fuzz_corpus.rs`.

#![no_main]

#[path = "../common/cluster_render.rs"]
mod cluster_render;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cluster_render::check(data);
});
