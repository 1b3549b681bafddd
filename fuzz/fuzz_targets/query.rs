//! libFuzzer target `query`: the property of collector/tests/fuzz.rs's target of that name. The
//! runtime, store and router are built once per process.
#![no_main]

use std::sync::OnceLock;

#[path = "../../collector/tests/fuzz/properties.rs"]
mod properties;

static SERVER: OnceLock<properties::Server> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let server = SERVER.get_or_init(properties::Server::api);
    assert!(properties::query(server, input));
});
