//! §5.2 age at joining, §5.2 over_age, and the cascades that must not happen.

use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

#[test]
fn join_age_edges() {
    // Default person: born 2008-06-15.
    let cases: &[Case] = &[
        ("turns 13 in the join month", |p| p.joined("2021-06"), &[]),
        (
            "month before turning 13",
            |p| p.joined("2021-05"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "day before the 13th birthday",
            |p| p.joined("2021-06-14"),
            &[E::JoinAgeTooYoung],
        ),
        ("on the 13th birthday", |p| p.joined("2021-06-15"), &[]),
        (
            "12 before 2017 is enough",
            |p| p.born(2004, 6, 15).joined("2016-06"),
            &[],
        ),
        (
            "11 before 2017 is not",
            |p| p.born(2004, 6, 15).joined("2016-05"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "12 in 2016-12 is enough",
            |p| p.born(2004, 6, 15).joined("2016-12"),
            &[],
        ),
        (
            "12 in 2017-01 is not",
            |p| p.born(2004, 6, 15).joined("2017-01"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "12 on 2016-12-31 is enough",
            |p| p.born(2004, 6, 15).joined("2016-12-31"),
            &[],
        ),
        (
            "12 on 2017-01-01 is not",
            |p| p.born(2004, 6, 15).joined("2017-01-01"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "新疆 65: 12 in 2016 is not enough",
            |p| {
                p.born(2004, 6, 15)
                    .joined("2016-06")
                    .branch(XINJIANG_BRANCH)
            },
            &[E::JoinAgeTooYoung],
        ),
        (
            "兵团 66: 12 in 2016 is not enough",
            |p| {
                p.born(2004, 6, 15)
                    .joined("2016-06")
                    .branch(BINGTUAN_BRANCH)
            },
            &[E::JoinAgeTooYoung],
        ),
        (
            "新疆: 13 is enough",
            |p| {
                p.born(2004, 6, 15)
                    .joined("2017-06")
                    .branch(XINJIANG_BRANCH)
            },
            &[],
        ),
        (
            "新疆 before 2016: 12 is not enough",
            |p| {
                p.born(2002, 6, 15)
                    .joined("2014-06")
                    .branch(XINJIANG_BRANCH)
                    .no_dev()
            },
            &[E::JoinAgeTooYoung],
        ),
        (
            "February 29 birthday, day precision",
            |p| p.born(2008, 2, 29).joined("2021-02-28"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "February 29 birthday, March 1",
            |p| p.born(2008, 2, 29).joined("2021-03-01"),
            &[],
        ),
        (
            "joined in the future",
            |p| p.joined("2027-01"),
            &[E::JoinedOnInvalid],
        ),
        (
            "joined this month is not the future",
            |p| p.born(2000, 1, 1).joined("2026-11"),
            &[],
        ),
        (
            "joined tomorrow",
            |p| p.born(2000, 1, 1).joined("2026-11-22"),
            &[E::JoinedOnInvalid],
        ),
        (
            "joined before birth (no age error too)",
            |p| p.joined("2008-05"),
            &[E::JoinedOnInvalid],
        ),
        (
            "joined in the birth month",
            |p| p.joined("2008-06"),
            &[E::JoinAgeTooYoung],
        ),
        (
            "invalid ID: no age error",
            |p| {
                let id = p.id_bad_check();
                p.joined("2010-01").text(Field::IdNumber, &id)
            },
            &[E::IdNumberChecksum],
        ),
        (
            "numeric ID: no age error",
            |p| {
                p.joined("2010-01")
                    .set(Field::IdNumber, V::N(440305200806150011.0))
            },
            &[E::IdNumberAsNumber],
        ),
        (
            "unreadable 入团年月: no dev-number year error",
            |p| p.joined("2017-13").dev("201444000001"),
            &[E::DateInvalid],
        ),
        (
            "empty 入团年月: nothing else",
            |p| p.joined("").no_dev(),
            &[E::RequiredMissing],
        ),
        (
            "28 today and not a cadre",
            |p| p.born(1998, 11, 21).joined("2013-05").no_dev(),
            &[E::OverAge],
        ),
        (
            "28 tomorrow",
            |p| p.born(1998, 11, 22).joined("2013-05").no_dev(),
            &[],
        ),
        (
            "30 and a cadre",
            |p| {
                p.born(1996, 1, 1)
                    .joined("2011-05")
                    .no_dev()
                    .text(Field::IsCadre, "是")
                    .text(Field::Duty, "书记")
            },
            &[],
        ),
    ];
    check(TemplateKind::Members, NATIONAL, cases);
}

#[test]
fn date_formats_that_must_pass() {
    let cases: &[Case] = &[
        ("2017-05", |p| p.born(2000, 1, 1).joined("2017-05"), &[]),
        (
            "2017-05-04",
            |p| p.born(2000, 1, 1).joined("2017-05-04"),
            &[],
        ),
        ("2017/5/4", |p| p.born(2000, 1, 1).joined("2017/5/4"), &[]),
        ("2017.05", |p| p.born(2000, 1, 1).joined("2017.05"), &[]),
        ("201705", |p| p.born(2000, 1, 1).joined("201705"), &[]),
        ("20170504", |p| p.born(2000, 1, 1).joined("20170504"), &[]),
        ("2017年5月", |p| p.born(2000, 1, 1).joined("2017年5月"), &[]),
        (
            "2017年5月4日",
            |p| p.born(2000, 1, 1).joined("2017年5月4日"),
            &[],
        ),
        (
            "2017年 5月 (spaces)",
            |p| p.born(2000, 1, 1).joined(" 2017年 5月 "),
            &[],
        ),
        (
            "full-width ２０１７－０５",
            |p| {
                p.born(2000, 1, 1)
                    .joined("２０１７－０５")
                    .dev("201744000777")
            },
            &[],
        ),
        (
            "with midnight time",
            |p| p.born(2000, 1, 1).joined("2017-05-04 00:00:00"),
            &[],
        ),
        (
            "Excel date cell",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2017-05")
                    .set(Field::JoinedOn, V::D(2017, 5, 4))
            },
            &[],
        ),
        (
            "Excel serial typed as a number",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2017-05")
                    .set(Field::JoinedOn, V::N(42859.0))
            },
            &[],
        ),
        (
            "yyyymm typed as a number",
            |p| {
                p.born(2000, 1, 1)
                    .joined("2017-05")
                    .set(Field::JoinedOn, V::N(201705.0))
            },
            &[],
        ),
        (
            "month 13",
            |p| p.born(2000, 1, 1).joined("2017-13").no_dev(),
            &[E::DateInvalid],
        ),
        (
            "April 31",
            |p| p.born(2000, 1, 1).joined("2017-04-31").no_dev(),
            &[E::DateInvalid],
        ),
        (
            "words",
            |p| p.born(2000, 1, 1).joined("去年五月").no_dev(),
            &[E::DateInvalid],
        ),
    ];
    check(TemplateKind::Members, NATIONAL, cases);
}
