//! §5.1 identity numbers: the shared reference vectors in full, and edge cases.

use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

fn is_id_code(c: E) -> bool {
    c.code().starts_with("id_number")
}

#[test]
fn reference_vectors_pass_in_full() {
    let csv = include_str!("id-vectors.csv");
    let vectors: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let mut it = l.splitn(3, ',');
            (
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
            )
        })
        .collect();
    assert!(vectors.len() >= 24, "{}", vectors.len());
    let rows: Vec<_> = vectors
        .iter()
        .enumerate()
        .map(|(i, (id, _))| {
            Person::new(i + 1)
                .text(Field::IdNumber, id)
                .joined("1940-01")
                .no_dev()
                .cells(TemplateKind::Members)
        })
        .collect();
    let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
    let v = validate(&bytes, TemplateKind::Members, NATIONAL);
    let found = findings(&v);
    let mut failures = Vec::new();
    for (i, (id, expected)) in vectors.iter().enumerate() {
        let got: Vec<E> = found
            .get(&(2 + i as u32))
            .map(|f| f.iter().map(|x| x.0).filter(|c| is_id_code(*c)).collect())
            .unwrap_or_default();
        let want: Vec<E> = match expected.as_str() {
            "valid" => vec![],
            code => vec![E::from_code(code).expect("known code")],
        };
        if got != want {
            failures.push(format!("{id}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn identity_edges() {
    let cases: &[Case] = &[
        ("valid", |p| p, &[]),
        (
            "lowercase x normalises",
            |p| {
                // 11010519491231002X is valid; written with a lowercase x.
                p.text(Field::IdNumber, "11010519491231002x")
                    .joined("1965-05")
                    .no_dev()
            },
            &[E::OverAge],
        ),
        (
            "full-width digits normalise",
            |p| {
                let id: String = p
                    .id()
                    .chars()
                    .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
                    .collect();
                p.text(Field::IdNumber, &id)
            },
            &[],
        ),
        (
            "inner spaces are ignored",
            |p| {
                let id = p.id();
                p.text(
                    Field::IdNumber,
                    &format!("{} {} {}", &id[..6], &id[6..14], &id[14..]),
                )
            },
            &[],
        ),
        (
            "zero-width characters are ignored",
            |p| {
                let id = p.id();
                p.text(Field::IdNumber, &format!("\u{200B}{id}\u{FEFF}"))
            },
            &[],
        ),
        (
            "17 digits",
            |p| {
                let id = p.id();
                p.text(Field::IdNumber, &id[..17])
            },
            &[E::IdNumberFormat],
        ),
        (
            "19 digits",
            |p| {
                let id = p.id();
                p.text(Field::IdNumber, &format!("{id}1"))
            },
            &[E::IdNumberFormat],
        ),
        (
            "letter inside",
            |p| {
                let id = p.id();
                p.text(Field::IdNumber, &format!("44A{}", &id[3..]))
            },
            &[E::IdNumberFormat],
        ),
        (
            "X not last",
            |p| {
                let id = p.id();
                p.text(Field::IdNumber, &format!("X{}", &id[1..]))
            },
            &[E::IdNumberFormat],
        ),
        (
            "stored as a number",
            |p| {
                let id: f64 = p.id().parse().unwrap_or(4.4e17);
                p.set(Field::IdNumber, V::N(id))
            },
            &[E::IdNumberAsNumber],
        ),
        (
            "15-digit legacy",
            |p| {
                p.text(Field::IdNumber, "610104620927690")
                    .joined("1978-05")
                    .no_dev()
            },
            &[E::IdNumberLegacy],
        ),
        ("February 29 of a leap year", |p| p.born(2008, 2, 29), &[]),
        (
            "February 29 of a common year",
            |p| {
                let id = p.id_born("20070229");
                p.text(Field::IdNumber, &id)
            },
            &[E::IdNumberBirthdate],
        ),
        (
            "born before 1900",
            |p| {
                let id = p.id_born("18991231");
                p.text(Field::IdNumber, &id)
            },
            &[E::IdNumberBirthdate],
        ),
        (
            "born tomorrow",
            |p| {
                let id = p.id_born("20261122");
                p.text(Field::IdNumber, &id)
            },
            &[E::IdNumberBirthdate],
        ),
        (
            "born today is not in the future",
            |p| {
                let id = p.id_born("20261121");
                p.text(Field::IdNumber, &id).joined("2026-11")
            },
            &[E::JoinAgeTooYoung],
        ),
        (
            "region never existed",
            |p| p.region("449999"),
            &[E::IdNumberRegion],
        ),
        ("historical region accepted", |p| p.region("140120"), &[]),
        ("Hong Kong permit", |p| p.region("810000"), &[]),
        ("Macau permit", |p| p.region("820000"), &[]),
        ("Taiwan permit", |p| p.region("830000"), &[]),
        (
            "wrong check character",
            |p| {
                let id = p.id_bad_check();
                p.text(Field::IdNumber, &id)
            },
            &[E::IdNumberChecksum],
        ),
        (
            "birth date checked before region and checksum",
            |p| p.text(Field::IdNumber, "999999200813450000"),
            &[E::IdNumberBirthdate],
        ),
        (
            "empty",
            |p| p.set(Field::IdNumber, V::Empty),
            &[E::RequiredMissing],
        ),
    ];
    check(TemplateKind::Members, NATIONAL, cases);
}

/// Every code of the reference (`shared/reference/region-codes.csv`, copied into
/// `schemas/data`) opens a valid ID number, among them
/// 丽水's 1986–2000 county codes and those created since 2021: a real person's ID number
/// is never refused over a missing region code.
#[test]
fn every_reference_region_code_is_accepted() {
    let reference = schemas::reference::REGION_CODES_CSV;
    let codes: Vec<&str> = reference
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter(|c| c.len() == 6 && !c.ends_with("0000"))
        .collect();
    assert!(codes.len() > 8000, "{}", codes.len());
    for newly in ["332801", "332829", "350404", "500157", "653229"] {
        assert!(codes.contains(&newly), "{newly} in the reference");
    }
    let rows: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            Person::new(i + 1)
                .region(code)
                .born(1995, 3, 1)
                .joined("2010-05")
                .no_dev()
                .cells(TemplateKind::Members)
        })
        .collect();
    let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
    let v = validate(&bytes, TemplateKind::Members, NATIONAL);
    let refused: Vec<String> = findings(&v)
        .iter()
        .filter(|(_, f)| f.iter().any(|x| x.0 == E::IdNumberRegion))
        .map(|(row, _)| codes[*row as usize - 2].to_string())
        .collect();
    assert!(refused.is_empty(), "refused region codes: {refused:?}");
}
