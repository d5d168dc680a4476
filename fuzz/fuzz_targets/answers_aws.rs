//! EC2 `DescribeInstances` answers (the one AWS answer lbtriage parses itself): pages or errors,
//! never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lbtriage::fuzzing::answers("aws", data);
});
