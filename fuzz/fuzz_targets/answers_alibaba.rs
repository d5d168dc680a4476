//! CloudMonitor `DescribeMetricList` answers (`Datapoints` decoded twice): pages or errors, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lbtriage::fuzzing::answers("alibaba", data);
});
