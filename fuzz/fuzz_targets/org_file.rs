//! Any bytes as an org file (CSV or a workbook): a tree or a list of problems, never a
//! panic past its guard, a hang, or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pipeline::orgs::OrgTree::parse(data);
});
