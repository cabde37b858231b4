//! Any bytes as an uploaded roster: the reader gives rows or a verdict, and never
//! panics past its guard, hangs, or grows memory past libFuzzer's `-rss_limit_mb`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::ReadLimits;
use schemas::TemplateKind;

fuzz_target!(
    init: {
        // libFuzzer's hook aborts on any panic, even one the reader's `catch_unwind`
        // turns into a verdict; a panic that escapes the guard still aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let limits = ReadLimits::default();
        let _ = pipeline::read::read_roster(data, TemplateKind::Members, None, &limits, None);
    }
);
