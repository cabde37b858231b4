//! §5.3 development member numbers: when required, the four situations, tolerance.

use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

#[test]
fn dev_number_edges() {
    // Born 2000-01-01 unless stated: old enough for every join date used.
    let cases: &[Case] = &[
        (
            "required from 2017-01",
            |p| p.born(2000, 1, 1).joined("2017-01").no_dev(),
            &[E::DevNumberMissing],
        ),
        (
            "optional in 2016-12",
            |p| p.born(2000, 1, 1).joined("2016-12").no_dev(),
            &[],
        ),
        (
            "optional on 2016-12-31",
            |p| p.born(2000, 1, 1).joined("2016-12-31").no_dev(),
            &[],
        ),
        (
            "required on 2017-01-01",
            |p| p.born(2000, 1, 1).joined("2017-01-01").no_dev(),
            &[E::DevNumberMissing],
        ),
        (
            "新疆: required from 2016-01",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2016-01")
                    .no_dev()
                    .branch(XINJIANG_BRANCH)
            },
            &[E::DevNumberMissing],
        ),
        (
            "新疆: optional in 2015-12",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2015-12")
                    .no_dev()
                    .branch(XINJIANG_BRANCH)
            },
            &[],
        ),
        (
            "兵团: required from 2016",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2016-03")
                    .no_dev()
                    .branch(BINGTUAN_BRANCH)
            },
            &[E::DevNumberMissing],
        ),
        (
            "optional but checked when present",
            |p| p.born(2000, 1, 1).joined("2015-05").dev("201444000001"),
            &[E::DevNumberYearMismatch],
        ),
        (
            "2017 join accepts 2018",
            |p| p.born(2000, 1, 1).joined("2017-05").dev("201844000002"),
            &[],
        ),
        (
            "2018 join accepts 2017",
            |p| p.born(2000, 1, 1).joined("2018-05").dev("201744000003"),
            &[],
        ),
        (
            "2019 join refuses 2018",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("201844000004"),
            &[E::DevNumberYearMismatch],
        ),
        (
            "2016 join refuses 2017",
            |p| p.born(2000, 1, 1).joined("2016-05").dev("201744000005"),
            &[E::DevNumberYearMismatch],
        ),
        (
            "11 digits",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("20194400001"),
            &[E::DevNumberSegment],
        ),
        (
            "13 digits",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("2019440000001"),
            &[E::DevNumberSegment],
        ),
        (
            "wrong province segment",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("201911000006"),
            &[E::DevNumberSegment],
        ),
        (
            "wrong province and year: both",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("201511000007"),
            &[E::DevNumberSegment, E::DevNumberYearMismatch],
        ),
        (
            "兵团 segment 66",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2019-05")
                    .dev("201966000008")
                    .branch(BINGTUAN_BRANCH)
            },
            &[],
        ),
        (
            "letters",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("2019A4000009"),
            &[E::DevNumberFormat],
        ),
        (
            "dashes",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("2019-44-000010"),
            &[E::DevNumberFormat],
        ),
        (
            "full-width digits pass",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2019-05")
                    .dev("２０１９４４０００011")
            },
            &[],
        ),
        (
            "spaces pass",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("2019 44 000012"),
            &[],
        ),
        (
            "first holder in the file",
            |p| p.born(2000, 1, 1).joined("2019-05").dev("201944999999"),
            &[],
        ),
        (
            "another person, same number",
            |p| p.born(2001, 1, 1).joined("2019-05").dev("201944999999"),
            &[E::DevNumberTaken],
        ),
        (
            "same person twice (a)",
            |p| {
                p.born(2002, 2, 2)
                    .joined("2019-05")
                    .dev("201944888888")
                    .region("440306")
            },
            &[E::IdDuplicateInFile],
        ),
        (
            "same person twice (b): a duplicate, not a taken number",
            |p| {
                p.born(2002, 2, 2)
                    .joined("2019-05")
                    .dev("201944888888")
                    .region("440306")
            },
            &[E::IdDuplicateInFile],
        ),
    ];
    // The last two cases are one person: give them the same ID number.
    check_with_same_id(cases, 23, 24);
}

/// Runs the cases with rows `a` and `b` (0-based) carrying the same ID number.
fn check_with_same_id(cases: &[Case], a: usize, b: usize) {
    let found = run_cases(
        TemplateKind::Members,
        NATIONAL,
        cases,
        |_| true,
        |people, rows| {
            rows[b].insert(Field::IdNumber, V::S(people[a].id()));
        },
    );
    // Messages say what the registry says.
    let msg = |row: u32, code: E| {
        found[&row]
            .iter()
            .find(|f| f.0 == code)
            .map(|f| f.2.clone())
            .unwrap()
    };
    let taken = msg(24, E::DevNumberTaken);
    assert!(
        taken.contains("占用") && taken.contains("上级组织") && taken.contains("第23行"),
        "{taken}"
    );
    let year = msg(12, E::DevNumberYearMismatch);
    assert!(year.contains("2019"), "{year}");
    let year = msg(9, E::DevNumberYearMismatch);
    assert!(year.contains("2015"), "{year}");
    let segment = msg(16, E::DevNumberSegment);
    assert!(segment.contains("44"), "{segment}");
    let segment = msg(14, E::DevNumberSegment);
    assert!(segment.contains("12位"), "{segment}");
    let dup = msg(25, E::IdDuplicateInFile);
    assert!(dup.contains("第26行"), "{dup}");
    let dup = msg(26, E::IdDuplicateInFile);
    assert!(dup.contains("第25行"), "{dup}");
}
