//! libFuzzer target `record`: the property of collector/tests/fuzz.rs's target of that name.
#![no_main]

use std::sync::OnceLock;

#[path = "../../collector/tests/fuzz/properties.rs"]
mod properties;

static INTERPRETER: OnceLock<choreoscope::record::Interpreter> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let interpreter = INTERPRETER.get_or_init(properties::record_interpreter);
    assert!(properties::record(interpreter, input));
});
