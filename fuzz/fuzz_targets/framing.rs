//! The probe's response-framing check on whatever a server sends: a verdict, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lbtriage::fuzzing::framing(data);
});
