//! §5.4 organisations: exact full names, scope, branches only, parentheses, suggestions.

use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

#[test]
fn organisation_edges() {
    let cases: &[Case] = &[
        ("exact full name", |p| p, &[]),
        (
            "surrounding and zero-width spaces",
            |p| p.text(Field::Branch, &format!(" \u{200B}{BRANCH} ")),
            &[],
        ),
        (
            "full-width parentheses match half-width ones",
            |p| p.text(Field::Branch, "深圳市某中学初一(2)班团支部"),
            &[E::OrgNameParentheses],
        ),
        (
            "name as stored with full-width parentheses",
            |p| p.branch(BRANCH_PARENS),
            &[E::OrgNameParentheses],
        ),
        (
            "short name",
            |p| p.text(Field::Branch, "初一1班"),
            &[E::OrgNotFound],
        ),
        (
            "near miss",
            |p| p.text(Field::Branch, "深圳市某中学初一1班团支布"),
            &[E::OrgNotFound],
        ),
        (
            "a committee",
            |p| p.text(Field::Branch, SCHOOL),
            &[E::OrgNotBranch],
        ),
        (
            "a branch of another province",
            |p| p.branch(BEIJING_BRANCH),
            &[E::OrgOutOfScope],
        ),
        (
            "a committee of another province",
            |p| {
                p.text(Field::Branch, "北京市某中学团委")
                    .dev("202211000099")
            },
            &[E::OrgNotBranch, E::OrgOutOfScope],
        ),
        (
            "empty",
            |p| p.set(Field::Branch, V::Empty),
            &[E::RequiredMissing],
        ),
        (
            "unknown names keep the uploader's province",
            |p| {
                p.text(Field::Branch, "查无此支部")
                    .born(2000, 1, 1)
                    .joined("2019-05")
            },
            &[E::OrgNotFound],
        ),
    ];
    check(TemplateKind::Members, GUANGDONG, cases);
}

#[test]
fn suggestions_name_close_full_names_in_scope_only() {
    let rows: Vec<_> = [
        Person::new(1).text(Field::Branch, "初一1班"),
        Person::new(2).text(Field::Branch, "深圳市某中学初一1班团支布"),
        Person::new(3).text(Field::Branch, "北京市某中学高一1班团支布"),
    ]
    .iter()
    .map(|p| p.cells(TemplateKind::Members))
    .collect();
    let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
    let v = validate(&bytes, TemplateKind::Members, GUANGDONG);
    let f = findings(&v);
    let msg = |row: u32| {
        f[&row]
            .iter()
            .find(|x| x.0 == E::OrgNotFound)
            .unwrap()
            .2
            .clone()
    };
    assert!(msg(2).contains(BRANCH), "{}", msg(2));
    assert!(msg(3).contains(BRANCH), "{}", msg(3));
    // Out of the uploader's scope: never suggested, never named.
    assert!(!msg(4).contains("北京"), "{}", msg(4));
}

#[test]
fn unknown_and_foreign_rows_go_to_the_uploaders_report() {
    let rows: Vec<_> = [
        Person::new(1).text(Field::Name, "张3"),
        Person::new(2).text(Field::Branch, "查无此支部"),
        Person::new(3).branch(BEIJING_BRANCH),
    ]
    .iter()
    .map(|p| p.cells(TemplateKind::Members))
    .collect();
    let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
    let v = validate(&bytes, TemplateKind::Members, GUANGDONG);
    let orgs = column_str(&v.rows, pipeline::validate::REPORT_ORG);
    assert_eq!(
        orgs,
        vec![
            Some(BRANCH.to_string()),
            Some(GUANGDONG.to_string()),
            Some(GUANGDONG.to_string())
        ]
    );
}

/// Every spreadsheet of the robustness corpus given as an org file: a listed problem,
/// never a panic (the parser runs under `catch_unwind`, as for rosters).
#[test]
fn the_robustness_corpus_as_org_files_is_refused_cleanly() {
    let files = crate::reading::corpus_files();
    let mut accepted = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        match pipeline::orgs::OrgTree::parse(&bytes) {
            Err(e) => assert!(!e.problems.is_empty(), "{}", path.display()),
            Ok(tree) => accepted.push((path.file_name().unwrap().to_owned(), tree.len())),
        }
    }
    // None of them is an org file.
    assert!(accepted.is_empty(), "{accepted:?}");
}
