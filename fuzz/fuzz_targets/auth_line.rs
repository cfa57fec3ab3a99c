#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aemp_proto::fuzzing::fuzz_auth_line(data));
