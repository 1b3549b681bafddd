//! libFuzzer target `traceparent`: the property of collector/tests/fuzz.rs's target of that name.
#![no_main]

#[path = "../../collector/tests/fuzz/properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    assert!(properties::traceparent(input));
});
