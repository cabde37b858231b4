//! §7 reports, compared by cell values: the files of an upload, error workbooks that can
//! be fixed and uploaded again, escalations, `summary.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};
use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use pipeline::report::{self, org_file_name};
use rust_xlsxwriter::Workbook;
use schemas::{ErrorCode as E, Field, TemplateKind};

use crate::helpers::*;

/// Cells of a sheet as strings, row by row.
fn sheet(path: &Path, index: usize) -> (String, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let name = wb.sheet_names()[index].clone();
    let range = wb.worksheet_range(&name).unwrap();
    let rows = range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::Float(f) => format!("{f}"),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    (name, rows)
}

fn zip_text(path: &Path, entry: &str) -> Option<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut z = ::zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut f = z.by_name(entry).ok()?;
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    Some(s)
}

/// (row, col), 0-based, of every cell carrying a note in the first sheet.
fn noted_cells(path: &Path) -> BTreeSet<(usize, usize)> {
    let xml = zip_text(path, "xl/comments1.xml").unwrap_or_default();
    xml.split("ref=\"")
        .skip(1)
        .map(|s| {
            let r = &s[..s.find('"').unwrap()];
            let letters: String = r.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            let digits: usize = r[letters.len()..].parse().unwrap();
            let col = letters
                .bytes()
                .fold(0usize, |acc, b| acc * 26 + (b - b'A' + 1) as usize)
                - 1;
            (digits - 1, col)
        })
        .collect()
}

struct Fixture {
    clean: Vec<Person>,
    broken: Vec<Person>,
}

fn fixture() -> Fixture {
    let mut clean: Vec<Person> = (1..=8)
        .map(|i| Person::new(i).born(2000, 1, 1).joined("2019-05"))
        .collect();
    // Joined at 15 before 2016: no development number needed.
    clean[7] = Person::new(8).born(2000, 1, 1).joined("2015-05").no_dev();
    let broken = vec![
        clean[0].clone(),
        clean[1].clone().text(Field::Phone, "123"),
        clean[2]
            .clone()
            .text(Field::Ethnicity, "火星族")
            .text(Field::Workplace, "=1+1"),
        clean[3]
            .clone()
            .text(Field::IdNumber, &clean[3].id_bad_check()),
        clean[4]
            .clone()
            .text(Field::Ethnicity, "汉")
            .text(Field::Name, "李4"),
        clean[5].clone().text(Field::Branch, "查无此支部"),
        clean[6].clone().branch(BRANCH_PARENS),
        clean[7].clone().joined("2011-05"),
    ];
    Fixture { clean, broken }
}

fn rows_of(people: &[Person]) -> Vec<BTreeMap<Field, V>> {
    people
        .iter()
        .map(|p| p.cells(TemplateKind::Members))
        .collect()
}

/// `people` uploaded on template A by the province, validated.
fn members(people: &[Person]) -> pipeline::Validation {
    let bytes = workbook(
        TemplateKind::Members,
        &["导入下级团支部团员团干部"],
        None,
        &rows_of(people),
        false,
    );
    validate(&bytes, TemplateKind::Members, GUANGDONG)
}

#[test]
fn an_upload_writes_every_report() {
    let fx = fixture();
    let bytes = workbook(
        TemplateKind::Members,
        &["导入下级团支部团员团干部"],
        None,
        &rows_of(&fx.broken),
        false,
    );
    let v = validate(&bytes, TemplateKind::Members, GUANGDONG);
    let dir = tempfile::tempdir().unwrap();
    let set = report::write_reports(&v, dir.path()).unwrap();
    let mut files = set.files.clone();
    files.sort();
    let mut want = vec![
        "summary.json".to_string(),
        "summary.xlsx".into(),
        "escalations.xlsx".into(),
        org_file_name(BRANCH),
        org_file_name(BRANCH_PARENS),
        org_file_name(GUANGDONG),
    ];
    want.sort();
    assert_eq!(files, want);
    // Nothing else left behind (no staging folder).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), want.len());

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let keys: BTreeSet<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "template",
            "verdict",
            "file_error",
            "warnings",
            "rows",
            "counts_by_code",
            "errors",
            "workbooks"
        ])
    );
    // Each organisation workbook with its organisation.
    let books: BTreeMap<String, String> = workbooks(&json).into_iter().collect();
    assert_eq!(
        books,
        BTreeMap::from(
            [BRANCH, BRANCH_PARENS, GUANGDONG].map(|o| (org_file_name(o), o.to_string()))
        )
    );
    assert_eq!(json["template"], "members");
    assert_eq!(json["verdict"], "accepted");
    assert_eq!(json["file_error"], serde_json::Value::Null);
    assert_eq!(
        json["rows"],
        serde_json::json!({"total": 8, "valid": 2, "with_errors": 6, "with_warnings": 1})
    );
    assert_eq!(json["counts_by_code"]["phone_invalid"], 1);
    assert_eq!(json["counts_by_code"]["org_name_parentheses"], 1);
    let first = &json["errors"][0];
    assert_eq!(
        first["row"], 4,
        "row numbers count title and header rows: {first}"
    );
    assert_eq!(first["column"], "手机号码");
    assert_eq!(first["code"], "phone_invalid");
    assert_eq!(first["severity"], "error");
    assert!(first["message"].as_str().unwrap().contains("手机"));

    // The branch workbook: only its rows, values as uploaded, report columns.
    let path = dir.path().join(org_file_name(BRANCH));
    let (name, cells) = sheet(&path, 0);
    assert_eq!(name, "导入下级团支部团员团干部");
    let header: Vec<&str> = cells[0].iter().map(String::as_str).collect();
    let mut want_header: Vec<&str> = TemplateKind::Members
        .template()
        .columns
        .iter()
        .map(|c| c.field.header())
        .collect();
    want_header.extend(["行号", "错误代码", "错误原因"]);
    assert_eq!(header, want_header);
    let row_numbers: Vec<&str> = cells[1..].iter().map(|r| r[14].as_str()).collect();
    assert_eq!(row_numbers, vec!["4", "5", "6", "7", "10"]);
    let li4 = &cells[4];
    assert_eq!(li4[0], "李4");
    assert_eq!(li4[2], "汉", "values as uploaded, not normalised");
    assert_eq!(li4[15], "name_invalid");
    assert_eq!(cells[2][12], "=1+1", "text stays text");
    assert!(
        !zip_text(&path, "xl/worksheets/sheet1.xml")
            .unwrap()
            .contains("<f>"),
        "no formulas"
    );
    assert_eq!(cells[5][15], "join_age_too_young");
    // Notes sit on the offending cells only.
    let noted = noted_cells(&path);
    assert_eq!(
        noted,
        BTreeSet::from([(1, 8), (2, 2), (3, 1), (4, 0), (5, 4)]),
    );
    let styles = zip_text(&path, "xl/styles.xml").unwrap();
    assert!(styles.contains("FFFF9999"), "red fill");
    let (codes_sheet, codes) = sheet(&path, 1);
    assert_eq!(codes_sheet, "说明");
    assert_eq!(codes.len(), E::ALL.len() + 1);

    // Warnings are yellow, in the parenthesised branch's own workbook.
    let parens = dir.path().join(org_file_name(BRANCH_PARENS));
    assert!(
        zip_text(&parens, "xl/styles.xml")
            .unwrap()
            .contains("FFFFEB9C")
    );
    let (_, p) = sheet(&parens, 0);
    assert_eq!(p.len(), 2);
    assert_eq!(p[1][15], "org_name_parentheses");

    // The unknown organisation's row goes to the uploader.
    let (_, up) = sheet(&dir.path().join(org_file_name(GUANGDONG)), 0);
    assert_eq!(up.len(), 2);
    assert_eq!(up[1][9], "查无此支部");

    // Escalations: per province, the four columns and the total.
    let (province, esc) = sheet(&dir.path().join("escalations.xlsx"), 0);
    assert_eq!(province, "44 广东省");
    assert_eq!(
        esc[0],
        vec!["姓名", "身份证号码", "手机号码", "当前所在团组织全称"]
    );
    assert_eq!(
        esc[1],
        vec![
            "张三".to_string(),
            fx.broken[7].id(),
            "13800138000".into(),
            BRANCH.into()
        ]
    );
    assert_eq!(esc[2][0], "合计");
    assert_eq!(esc[2][1], "1");

    // summary.xlsx: counts, all issue rows, the codes.
    let summary = dir.path().join("summary.xlsx");
    let (s0, overview) = sheet(&summary, 0);
    assert_eq!(s0, "汇总");
    assert!(
        overview
            .iter()
            .any(|r| r[0] == "有错误的行数" && r[2] == "6")
    );
    let (s1, all) = sheet(&summary, 1);
    assert_eq!(s1, "错误明细");
    assert_eq!(all.len(), 8);
    let (s2, orgs) = sheet(&summary, 2);
    assert_eq!(s2, "按组织");
    assert_eq!(
        orgs[0],
        vec!["组织全称", "有错误的行数", "仅有提示的行数", "问题总数"]
    );
    assert!(orgs.len() > 1);
    assert_eq!(sheet(&summary, 3).0, "说明");
    counts_are_numbers(&summary);
    prints_fit_to_width_with_its_header(&summary, 4);
}

/// summary.xlsx read back cell by cell: counts are numeric cells (no "number stored as
/// text").
fn counts_are_numbers(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let overview = wb.worksheet_range("汇总").unwrap();
    let mut counted = 0;
    for row in overview.rows() {
        if let [Data::String(k), _, v] = row
            && k.ends_with("行数")
        {
            assert!(matches!(v, Data::Float(_)), "{k}: {v:?}");
            counted += 1;
        }
    }
    assert_eq!(counted, 4, "总行数, 可导入行数, 有错误的行数, 有提示的行数");
    let by_org = wb.worksheet_range("按组织").unwrap();
    for row in by_org.rows().skip(1) {
        assert!(
            row[1..4].iter().all(|c| matches!(c, Data::Float(_))),
            "{row:?}"
        );
    }
}

/// Every sheet prints fit to the page width with its header row repeated on each page.
fn prints_fit_to_width_with_its_header(path: &Path, sheets: usize) {
    let bytes = std::fs::read(path).unwrap();
    let wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let names = wb.sheet_names();
    assert_eq!(names.len(), sheets);
    let workbook = zip_text(path, "xl/workbook.xml").unwrap();
    for (i, name) in names.iter().enumerate() {
        let xml = zip_text(path, &format!("xl/worksheets/sheet{}.xml", i + 1)).unwrap();
        assert!(
            xml.contains(r#"<pageSetUpPr fitToPage="1"/>"#),
            "{name}: not fit to page"
        );
        assert!(
            xml.contains(r#"fitToHeight="0""#),
            "{name}: not fit to width only"
        );
        let titles = format!(
            r#"<definedName name="_xlnm.Print_Titles" localSheetId="{i}">'{name}'!$1:$1</definedName>"#
        );
        let plain = titles.replace(&format!("'{name}'"), name);
        assert!(
            workbook.contains(&titles) || workbook.contains(&plain),
            "{name}: header row not repeated in {workbook}"
        );
    }
}

#[test]
fn a_rejected_upload_writes_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let rejection = pipeline::Rejection {
        code: E::TemplateMixed,
        message: E::TemplateMixed.message().into(),
    };
    report::write_rejected(TemplateKind::Members, &rejection, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"], "rejected");
    assert_eq!(json["file_error"]["code"], "template_mixed");
    assert_eq!(json["rows"]["total"], 0);
    let (_, cells) = sheet(&dir.path().join("summary.xlsx"), 0);
    assert!(
        cells
            .iter()
            .any(|r| r.contains(&"template_mixed".to_string()))
    );
    prints_fit_to_width_with_its_header(&dir.path().join("summary.xlsx"), 1);
}

/// Take an error workbook, fix its red cells, upload it again: those errors are gone
/// and nothing new appears.
#[test]
fn fixed_error_workbooks_upload_again_cleanly() {
    let fx = fixture();
    let bytes = workbook(
        TemplateKind::Members,
        &[],
        None,
        &rows_of(&fx.broken),
        false,
    );
    let v = validate(&bytes, TemplateKind::Members, GUANGDONG);
    let dir = tempfile::tempdir().unwrap();
    report::write_reports(&v, dir.path()).unwrap();
    let path = dir.path().join(org_file_name(BRANCH));
    let (_, cells) = sheet(&path, 0);
    let red = noted_cells(&path);
    assert!(!red.is_empty());
    let template = TemplateKind::Members.template();

    // Re-upload the workbook as it is, with the red cells fixed.
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in cells.iter().enumerate() {
        let source = if r == 0 {
            None
        } else {
            Some(row[14].parse::<usize>().unwrap() - 2)
        };
        for (c, value) in row.iter().enumerate() {
            let value = match (source, red.contains(&(r, c))) {
                (Some(i), true) => match fx.clean[i]
                    .cells(TemplateKind::Members)
                    .get(&template.columns[c].field)
                {
                    Some(V::S(s)) => s.clone(),
                    _ => String::new(),
                },
                _ => value.clone(),
            };
            if !value.is_empty() {
                ws.write_string(r as u32, c as u16, value).unwrap();
            }
        }
    }
    let fixed = wb.save_to_buffer().unwrap();
    let again = validate(&fixed, TemplateKind::Members, GUANGDONG);
    assert_eq!(again.rows.height(), cells.len() - 1);
    assert_eq!(again.errors.height(), 0, "{:?}", findings(&again));
    assert!(
        again.warnings.is_empty(),
        "report columns are ignored: {:?}",
        again.warnings
    );
}

#[test]
fn letting_go_of_clean_rows_changes_no_report() {
    let fx = fixture();
    let mut people = fx.broken.clone();
    people.extend((100..110).map(|i| Person::new(i).born(2001, 2, 3).joined("2019-05")));
    let bytes = workbook(
        TemplateKind::Members,
        &["导入下级团支部团员团干部"],
        None,
        &rows_of(&people),
        false,
    );
    let full = validate(&bytes, TemplateKind::Members, GUANGDONG);
    let mut lean = validate(&bytes, TemplateKind::Members, GUANGDONG);
    lean.keep_issue_rows().unwrap();
    assert_eq!(lean.counts().unwrap(), full.counts().unwrap());
    let counts = full.counts().unwrap();
    assert_eq!(
        lean.rows.height(),
        counts.with_errors + counts.with_warnings
    );
    assert!(lean.rows.height() < full.rows.height());

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = report::write_reports(&full, a.path()).unwrap().files;
    assert_eq!(report::write_reports(&lean, b.path()).unwrap().files, files);
    for f in &files {
        if f.ends_with(".json") {
            assert_eq!(
                std::fs::read_to_string(a.path().join(f)).unwrap(),
                std::fs::read_to_string(b.path().join(f)).unwrap()
            );
            continue;
        }
        let wb: Xlsx<_> =
            open_workbook_from_rs(Cursor::new(std::fs::read(a.path().join(f)).unwrap())).unwrap();
        let sheets = wb.sheet_names().len();
        for i in 0..sheets {
            assert_eq!(
                sheet(&a.path().join(f), i),
                sheet(&b.path().join(f), i),
                "{f}"
            );
        }
        assert_eq!(
            noted_cells(&a.path().join(f)),
            noted_cells(&b.path().join(f))
        );
    }
}

/// With a hook, each organisation workbook is handed over, not written: the folder holds
/// the uploader's reports only, the set still lists every file, and each workbook handed
/// over has the cells of the one written without a hook. Both when the folder is new (the
/// staging folder becomes it) and when it exists (files are moved in one by one).
#[test]
fn a_taken_workbook_is_handed_over_not_written() {
    let v = members(&fixture().broken);
    let plain = tempfile::tempdir().unwrap();
    let written = report::write_reports(&v, plain.path()).unwrap();
    let uploader = ["escalations.xlsx", "summary.json", "summary.xlsx"];

    for folder_exists in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("reports");
        if folder_exists {
            std::fs::create_dir(&out).unwrap();
        }
        let taken = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let keep = taken.clone();
        let hook: report::OnWorkbook = std::sync::Arc::new(move |name: &str, bytes: Vec<u8>| {
            assert!(
                keep.lock()
                    .unwrap()
                    .insert(name.to_string(), bytes)
                    .is_none(),
                "{name} handed over twice"
            );
        });
        let set = report::write_reports_with(&v, &out, Some(&hook)).unwrap();
        assert_eq!(set.files, written.files, "folder exists: {folder_exists}");
        assert_eq!(set.books, written.books);

        let mut on_disk: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, uploader, "folder exists: {folder_exists}");

        let taken = taken.lock().unwrap();
        let mut books: Vec<&String> = set.books.iter().map(|(file, _)| file).collect();
        books.sort();
        assert_eq!(taken.keys().collect::<Vec<_>>(), books);
        assert_eq!(books.len(), 3);
        for (name, bytes) in taken.iter() {
            let copy = root.path().join(name);
            std::fs::write(&copy, bytes).unwrap();
            assert_eq!(
                sheet(&copy, 0),
                sheet(&plain.path().join(name), 0),
                "{name}"
            );
            assert_eq!(noted_cells(&copy), noted_cells(&plain.path().join(name)));
        }
        // Nothing else beside the folder: no staging folder left behind.
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            1 + taken.len()
        );
    }
}

/// The rows that load are those without an error, warnings allowed, at their positions
/// in the validated rows, whatever comes before them: one row per case of the fixture.
#[test]
fn valid_positions_are_the_rows_without_an_error() {
    let fx = fixture();
    // (the fixture's row, loads)
    let table = [
        (0, true),  // clean
        (1, false), // bad phone
        (2, false), // bad ethnicity, a formula
        (3, false), // bad ID check digit
        (4, false), // bad name
        (5, false), // unknown branch
        (6, true),  // a warning only (parentheses in the branch name)
        (7, false), // joined too young
    ];
    let v = members(&fx.broken);
    let want: Vec<u32> = table.iter().filter(|c| c.1).map(|c| c.0).collect();
    assert_eq!(v.valid_positions().unwrap(), want);
    // An error first and last, reversed: the positions follow the rows.
    let mut reversed = fx.broken.clone();
    reversed.reverse();
    let v = members(&reversed);
    let mut want: Vec<u32> = want.iter().map(|&i| 7 - i).collect();
    want.sort();
    assert_eq!(v.valid_positions().unwrap(), want);
    // A clean file: every row; the positions index `rows` itself.
    let v = members(&fx.clean);
    assert_eq!(v.valid_positions().unwrap(), (0..8).collect::<Vec<u32>>());
    assert_eq!(v.rows.height(), 8);
}
