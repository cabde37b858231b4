//! §3 reading: header detection under title rows, header spellings, column order,
//! ignored columns, template verdicts, limits, sheets, cell types and date epochs.

use pipeline::{Outcome, ReadLimits, validate_bytes};
use rust_xlsxwriter::Workbook;
use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

fn outcome(bytes: &[u8], template: TemplateKind, limits: ReadLimits) -> Outcome {
    let tree = tree();
    let r = tree.resolver(NATIONAL).unwrap();
    let mut opts = options(template);
    opts.limits = limits;
    validate_bytes(bytes, &opts, &r).expect("pipeline ran")
}

fn rejected(bytes: &[u8], template: TemplateKind) -> pipeline::Rejection {
    match outcome(bytes, template, ReadLimits::default()) {
        Outcome::Rejected(r) => r,
        Outcome::Accepted(v) => panic!("accepted {} rows", v.rows.height()),
    }
}

fn rows(n: usize, template: TemplateKind) -> Vec<std::collections::BTreeMap<Field, V>> {
    (0..n).map(|i| Person::new(i + 1).cells(template)).collect()
}

#[test]
fn header_found_under_up_to_five_title_rows() {
    for titles in 0..=5 {
        let t: Vec<&str> =
            ["导入下级团支部团员团干部", "说明", "", "第四行", "第五行"][..titles].to_vec();
        let bytes = workbook(
            TemplateKind::Members,
            &t,
            None,
            &rows(3, TemplateKind::Members),
            false,
        );
        let v = validate(&bytes, TemplateKind::Members, NATIONAL);
        assert_eq!(v.header_row, titles as u32 + 1, "{titles} title rows");
        assert_eq!(v.rows.height(), 3);
        assert!(v.errors.height() == 0, "{:?}", findings(&v));
    }
    let six = ["1", "2", "3", "4", "5", "6"];
    let bytes = workbook(
        TemplateKind::Members,
        &six,
        None,
        &rows(3, TemplateKind::Members),
        false,
    );
    assert_eq!(
        rejected(&bytes, TemplateKind::Members).code,
        E::TemplateUnknown
    );
}

#[test]
fn headers_as_admins_write_them() {
    let headers = [
        "*姓名",
        "身份证号码（必填）",
        " 民 族 ",
        "政治面貌*",
        "入团时间",
        "团员编号",
        "学历",
        "职业",
        "手机号",
        "所在团支部全称",
        "是否为团干部",
        "团内职务",
        "工作单位",
        "邮箱",
    ];
    let bytes = workbook(
        TemplateKind::Members,
        &[],
        Some(&headers),
        &rows(2, TemplateKind::Members),
        false,
    );
    let v = validate(&bytes, TemplateKind::Members, NATIONAL);
    assert_eq!(v.errors.height(), 0, "{:?}", findings(&v));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn column_order_is_free_and_extra_columns_are_listed() {
    let template = TemplateKind::Members;
    let t = template.template();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    // Reverse order, an unknown column, and the report's own columns.
    let mut headers: Vec<&str> = t.columns.iter().rev().map(|c| c.field.header()).collect();
    headers.insert(3, "备注");
    headers.extend(["行号", "错误代码", "错误原因"]);
    for (i, h) in headers.iter().enumerate() {
        ws.write_string(0, i as u16, *h).unwrap();
    }
    let people = rows(2, template);
    for (k, row) in people.iter().enumerate() {
        for (i, h) in headers.iter().enumerate() {
            let f = t
                .columns
                .iter()
                .find(|c| c.field.header() == *h)
                .map(|c| c.field);
            let value = match f.and_then(|f| row.get(&f)) {
                Some(V::S(s)) => s.clone(),
                _ if *h == "备注" => "无".into(),
                _ if *h == "错误代码" => "old_code".into(),
                _ => String::new(),
            };
            if !value.is_empty() {
                ws.write_string(1 + k as u32, i as u16, value).unwrap();
            }
        }
    }
    let bytes = wb.save_to_buffer().unwrap();
    let v = validate(&bytes, template, NATIONAL);
    assert_eq!(v.errors.height(), 0, "{:?}", findings(&v));
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(v.warnings[0].contains("备注") && !v.warnings[0].contains("行号"));
}

#[test]
fn templates_must_not_be_mixed() {
    let b_file = workbook(
        TemplateKind::Cadres,
        &[],
        None,
        &rows(2, TemplateKind::Cadres),
        false,
    );
    let r = rejected(&b_file, TemplateKind::Members);
    assert_eq!(r.code, E::TemplateMixed);
    assert_eq!(
        r.message,
        "您上传的excel表格错误，‘导入本级团干部’和‘导入下级团支部团员团干部’中所下载的模板不可混用，请重新上传正确的表格"
    );
    let a_file = workbook(
        TemplateKind::Members,
        &[],
        None,
        &rows(2, TemplateKind::Members),
        false,
    );
    assert_eq!(
        rejected(&a_file, TemplateKind::Cadres).code,
        E::TemplateMixed
    );
}

#[test]
fn unknown_headers_name_the_missing_columns() {
    let headers = [
        "姓名",
        "身份证号码",
        "民族",
        "学历",
        "手机号码",
        "所在团支部",
    ];
    let bytes = workbook(
        TemplateKind::Members,
        &[],
        Some(&headers),
        &rows(2, TemplateKind::Members),
        false,
    );
    let r = rejected(&bytes, TemplateKind::Members);
    assert_eq!(r.code, E::TemplateUnknown);
    for missing in ["政治面貌", "入团年月", "职业"] {
        assert!(r.message.contains(missing), "{}", r.message);
    }
    assert!(!r.message.contains("姓名"), "{}", r.message);
}

#[test]
fn unreadable_files_say_why() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero bytes", vec![], "为空"),
        (
            "csv text",
            "姓名,身份证号码\n张三,1\n".as_bytes().to_vec(),
            "不是 Excel",
        ),
        ("html", b"<!DOCTYPE html><html></html>".to_vec(), "网页"),
        (
            "random bytes",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "不是 Excel",
        ),
        (
            "truncated zip",
            workbook(
                TemplateKind::Members,
                &[],
                None,
                &rows(2, TemplateKind::Members),
                false,
            )[..300]
                .to_vec(),
            "损坏",
        ),
        (
            "password",
            std::fs::read(corpus().join("pass_protected.xlsx")).unwrap(),
            "密码",
        ),
        (
            "password ods",
            std::fs::read(corpus().join("pass_protected.ods")).unwrap(),
            "密码",
        ),
        (
            "password xlsb",
            std::fs::read(corpus().join("pass_protected.xlsb")).unwrap(),
            "密码",
        ),
    ];
    for (name, bytes, needle) in cases {
        let r = rejected(&bytes, TemplateKind::Members);
        assert_eq!(r.code, E::FileUnreadable, "{name}: {r:?}");
        assert!(r.message.contains(needle), "{name}: {}", r.message);
    }
}

#[test]
fn empty_sheets_and_header_only_files_are_unreadable() {
    let mut wb = Workbook::new();
    wb.add_worksheet();
    let r = rejected(&wb.save_to_buffer().unwrap(), TemplateKind::Members);
    assert_eq!(r.code, E::FileUnreadable);
    assert!(r.message.contains("为空"), "{}", r.message);
    let header_only = workbook(TemplateKind::Members, &[], None, &[], false);
    let r = rejected(&header_only, TemplateKind::Members);
    assert_eq!(r.code, E::FileUnreadable);
    assert!(r.message.contains("没有数据"), "{}", r.message);
}

#[test]
fn too_many_rows_is_file_too_large() {
    let bytes = workbook(
        TemplateKind::Members,
        &[],
        None,
        &rows(5, TemplateKind::Members),
        false,
    );
    let limits = ReadLimits {
        max_rows: 4,
        ..ReadLimits::default()
    };
    match outcome(&bytes, TemplateKind::Members, limits.clone()) {
        Outcome::Rejected(r) => {
            assert_eq!(r.code, E::FileTooLarge);
            assert!(r.message.contains('4'), "{}", r.message);
        }
        Outcome::Accepted(_) => panic!("accepted"),
    }
    let ok = workbook(
        TemplateKind::Members,
        &[],
        None,
        &rows(4, TemplateKind::Members),
        false,
    );
    assert!(matches!(
        outcome(&ok, TemplateKind::Members, limits),
        Outcome::Accepted(_)
    ));
    // A zip whose entries declare more than the decompressed limit is refused before
    // any parser inflates it.
    let inflated = ReadLimits {
        max_uncompressed_bytes: 4096,
        ..ReadLimits::default()
    };
    match outcome(&ok, TemplateKind::Members, inflated) {
        Outcome::Rejected(r) => {
            assert_eq!(r.code, E::FileTooLarge);
            assert!(r.message.contains("解压"), "{}", r.message);
        }
        Outcome::Accepted(_) => panic!("accepted"),
    }
    let small = ReadLimits {
        max_file_bytes: 100,
        ..ReadLimits::default()
    };
    match outcome(&ok, TemplateKind::Members, small) {
        Outcome::Rejected(r) => assert_eq!(r.code, E::FileTooLarge),
        Outcome::Accepted(_) => panic!("accepted"),
    }
}

#[test]
fn the_first_visible_sheet_is_read() {
    let mut wb = Workbook::new();
    let hidden = wb.add_worksheet();
    hidden.set_name("旧数据").unwrap();
    hidden.write_string(0, 0, "不要读我").unwrap();
    hidden.set_hidden(true);
    let ws = wb.add_worksheet();
    ws.set_name("名单").unwrap();
    ws.set_active(true);
    let t = TemplateKind::Members.template();
    let person = Person::new(1).cells(TemplateKind::Members);
    for (i, c) in t.columns.iter().enumerate() {
        ws.write_string(0, i as u16, c.field.header()).unwrap();
        if let Some(V::S(s)) = person.get(&c.field) {
            ws.write_string(1, i as u16, s).unwrap();
        }
    }
    let v = validate(
        &wb.save_to_buffer().unwrap(),
        TemplateKind::Members,
        NATIONAL,
    );
    assert_eq!(v.sheet, "名单");
    assert_eq!(v.errors.height(), 0, "{:?}", findings(&v));
}

#[test]
fn dates_of_the_1904_system_read_the_same() {
    for date_1904 in [false, true] {
        let people = vec![
            Person::new(1)
                .born(2000, 1, 1)
                .joined("2017-05")
                .set(Field::JoinedOn, V::D(2017, 5, 4))
                .cells(TemplateKind::Members),
            Person::new(2)
                .born(2008, 6, 15)
                .joined("2021-05")
                .set(Field::JoinedOn, V::D(2021, 5, 31))
                .cells(TemplateKind::Members),
        ];
        let bytes = workbook(TemplateKind::Members, &[], None, &people, date_1904);
        let v = validate(&bytes, TemplateKind::Members, NATIONAL);
        let joined = column_str(&v.rows, "joined_on");
        assert_eq!(
            joined,
            vec![Some("2017-05-04".into()), Some("2021-05-31".into())],
            "1904: {date_1904}"
        );
        let f = findings(&v);
        assert!(!f.contains_key(&2), "{f:?}");
        assert_eq!(
            f[&3].iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![E::JoinAgeTooYoung]
        );
    }
}

#[test]
fn numeric_id_cells_are_reported_not_guessed() {
    let people = vec![
        Person::new(1)
            .set(Field::IdNumber, V::N(440305200806150011.0))
            .cells(TemplateKind::Members),
        // 15 digits fit a double exactly: read as the legacy number it is.
        Person::new(2)
            .joined("1978-05")
            .no_dev()
            .set(Field::IdNumber, V::N(610104620927690.0))
            .cells(TemplateKind::Members),
    ];
    let bytes = workbook(TemplateKind::Members, &[], None, &people, false);
    let v = validate(&bytes, TemplateKind::Members, NATIONAL);
    let f = findings(&v);
    assert_eq!(
        f[&2].iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![E::IdNumberAsNumber]
    );
    assert_eq!(
        f[&3].iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![E::IdNumberLegacy]
    );
    assert!(f[&3][0].2.contains("610104196209276908"), "{}", f[&3][0].2);
}

pub fn corpus() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join("../../shared/xlsx-corpus/calamine")
}

/// Every spreadsheet of the robustness corpus, sorted.
pub fn corpus_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .expect("shared/xlsx-corpus/calamine beside the project")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    files.sort();
    // The issue counts 131; the folder holds 132 spreadsheets (plus its licence). Run them all.
    assert!(files.len() >= 131, "{}", files.len());
    files
}

/// Every file of the robustness corpus, as either template: a file-level verdict with a
/// clear message, quickly, never a panic.
#[test]
fn the_robustness_corpus_is_rejected_cleanly() {
    let files = corpus_files();
    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for template in [TemplateKind::Members, TemplateKind::Cadres] {
            let start = std::time::Instant::now();
            let out = outcome(&bytes, template, ReadLimits::default());
            let took = start.elapsed();
            let name = path.file_name().unwrap().to_string_lossy();
            match out {
                Outcome::Rejected(r)
                    if matches!(r.code, E::TemplateUnknown | E::FileUnreadable)
                        && r.message.len() > r.code.message().len() => {}
                Outcome::Rejected(r) => {
                    failures.push(format!("{name} ({}): {r:?}", template.code()))
                }
                Outcome::Accepted(v) => {
                    failures.push(format!("{name}: accepted {} rows", v.rows.height()))
                }
            }
            if took > std::time::Duration::from_secs(5) {
                failures.push(format!("{name}: took {took:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
