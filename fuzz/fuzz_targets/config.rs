//! Configuration parsing and validation: any text gives a config or an error naming a key, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lbtriage::fuzzing::config(data);
});
