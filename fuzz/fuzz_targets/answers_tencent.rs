//! Cloud Monitor `GetMonitorData` answers: points or errors, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lbtriage::fuzzing::answers("tencent", data);
});
