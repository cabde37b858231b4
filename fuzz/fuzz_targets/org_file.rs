//! Any bytes as an org file (CSV or a workbook): a tree or a list of problems, never a
//! panic past its guard, a hang, or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // libFuzzer's hook aborts on any panic, even one the parser's `catch_unwind`
        // turns into a problem; a panic that escapes the guard still aborts.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let _ = pipeline::orgs::OrgTree::parse(data);
    }
);
