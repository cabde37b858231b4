//! Generated rosters: validation finds exactly the injected mistakes, nothing else, and
//! every row code the offline validator can produce is reachable.

use std::collections::BTreeSet;

use pipeline::orgs::OrgTree;
use pipeline::sample::{SampleOptions, generate};
use pipeline::{Outcome, validate_bytes};
use schemas::codes::Level;
use schemas::{ErrorCode, TemplateKind};

use crate::helpers::*;

/// `(excel row, code)` pairs, sorted.
type Findings = Vec<(u32, ErrorCode)>;

/// What the generator injected, and what validation found.
fn run(template: TemplateKind, rows: usize, rate: f64, seed: u64) -> (Findings, Findings) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.xlsx");
    let sample = generate(
        &SampleOptions {
            rows,
            template,
            error_rate: rate,
            seed,
            as_of: as_of(),
        },
        &path,
    )
    .unwrap();
    let tree = OrgTree::parse(sample.orgs_csv.as_bytes()).unwrap();
    let resolver = tree.resolver(&sample.uploader).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let Outcome::Accepted(v) = validate_bytes(&bytes, &options(template), &resolver).unwrap()
    else {
        panic!("sample rejected")
    };
    assert_eq!(v.rows.height(), rows);
    let mut got: Vec<(u32, ErrorCode)> = findings(&v)
        .into_iter()
        .flat_map(|(row, f)| f.into_iter().map(move |x| (row, x.0)))
        .collect();
    got.sort();
    (sample.expected, got)
}

fn diff(want: &[(u32, ErrorCode)], got: &[(u32, ErrorCode)]) -> String {
    let w: BTreeSet<_> = want.iter().collect();
    let g: BTreeSet<_> = got.iter().collect();
    format!(
        "missing: {:?}\nunexpected: {:?}",
        w.difference(&g).take(20).collect::<Vec<_>>(),
        g.difference(&w).take(20).collect::<Vec<_>>()
    )
}

#[test]
fn members_sample_yields_exactly_the_injected_mistakes() {
    let (want, got) = run(TemplateKind::Members, 600, 0.25, 7);
    assert!(want.len() > 100);
    assert_eq!(want, got, "{}", diff(&want, &got));
}

#[test]
fn cadres_sample_yields_exactly_the_injected_mistakes() {
    let (want, got) = run(TemplateKind::Cadres, 300, 0.25, 11);
    assert_eq!(want, got, "{}", diff(&want, &got));
}

#[test]
fn a_clean_sample_is_clean() {
    let (want, got) = run(TemplateKind::Members, 2000, 0.0, 3);
    assert!(want.is_empty());
    assert!(got.is_empty(), "{:?}", &got[..got.len().min(20)]);
}

/// Every row-level code that does not need the database is produced by some row.
#[test]
fn every_offline_row_code_is_reachable() {
    let (_, a) = run(TemplateKind::Members, 200, 0.5, 5);
    let seen: BTreeSet<ErrorCode> = a.iter().map(|x| x.1).collect();
    let missing: Vec<_> = ErrorCode::ALL
        .iter()
        .filter(|c| c.level() == Level::Row && !c.needs_database() && !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "never produced: {missing:?}");
}

/// Nearly every row with a mistake, every kind about fifty times: generator and
/// validator must still agree exactly (rare combinations, such as an ID ending in X
/// typed as a number, show up here).
#[test]
fn a_dense_sample_yields_exactly_the_injected_mistakes() {
    let (want, got) = run(TemplateKind::Members, 1500, 0.9, 99);
    assert!(want.len() > 1300);
    assert_eq!(want, got, "{}", diff(&want, &got));
}

/// Validation works a slice of rows at a time; what looks across the file (duplicate ID
/// numbers, a development number held by an earlier row) is found across slices. Every
/// slice size gives the same rows, findings and counts, and keeping only the rows with
/// findings changes nothing the reports read.
#[test]
fn every_slice_size_gives_the_same_verdicts() {
    use pipeline::read::read_roster;
    use pipeline::validate::validate_sliced;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roster.xlsx");
    let sample = generate(
        &SampleOptions {
            rows: 2500,
            template: TemplateKind::Members,
            error_rate: 0.3,
            seed: 11,
            as_of: as_of(),
        },
        &path,
    )
    .unwrap();
    let tree = OrgTree::parse(sample.orgs_csv.as_bytes()).unwrap();
    let resolver = tree.resolver(&sample.uploader).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let opts = options(TemplateKind::Members);
    let run = |slice: usize, issue_rows_only: bool| {
        let raw = read_roster(&bytes, opts.template, None, &opts.limits, None).unwrap();
        validate_sliced(raw, as_of(), &resolver, issue_rows_only, slice).unwrap()
    };
    let whole = run(1 << 20, false);
    let mut expected = sample.expected.clone();
    expected.sort();
    let mut got: Vec<(u32, ErrorCode)> = findings(&whole)
        .into_iter()
        .flat_map(|(row, f)| f.into_iter().map(move |x| (row, x.0)))
        .collect();
    got.sort();
    assert_eq!(got, expected, "{}", diff(&expected, &got));
    let mut issues_only = run(1 << 20, false);
    issues_only.keep_issue_rows().unwrap();
    for slice in [333, 1024, 2499] {
        let v = run(slice, false);
        assert_eq!(v.rows, whole.rows, "slice {slice}: rows");
        assert_eq!(v.errors, whole.errors, "slice {slice}: findings");
        let v = run(slice, true);
        assert_eq!(
            v.rows, issues_only.rows,
            "slice {slice}: rows with findings"
        );
        assert_eq!(v.errors, whole.errors, "slice {slice}: findings");
        assert_eq!(
            v.counts().unwrap(),
            whole.counts().unwrap(),
            "slice {slice}: counts"
        );
    }
}
