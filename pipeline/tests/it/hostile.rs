//! Hostile names and cells (issue 14): whatever an organisation is called and whatever a
//! cell holds, every organisation gets its own portable workbook and the file a verdict.

use std::collections::BTreeSet;

use pipeline::orgs::OrgTree;
use pipeline::report::{self, book_names, org_file_name};
use pipeline::{Outcome, validate_bytes};
use schemas::{ErrorCode as E, TemplateKind};

use crate::helpers::*;

/// What every platform's file system takes: at most 255 bytes, `.xlsx` kept, no
/// separators, reserved characters, controls or invisible characters, no trailing dot or
/// space, no leading dot, no Windows device name.
fn assert_portable(org: &str, file: &str) {
    assert!(file.len() <= 255, "{org:?} → {} bytes", file.len());
    let stem = file
        .strip_suffix(".xlsx")
        .unwrap_or_else(|| panic!("{org:?} → {file:?} lost .xlsx"));
    assert!(!stem.is_empty(), "{org:?}");
    for c in stem.chars() {
        assert!(
            !matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
                && !c.is_control()
                && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'),
            "{org:?} → {file:?} holds {c:?}"
        );
    }
    assert!(
        !stem.ends_with('.') && !stem.ends_with(' '),
        "{org:?} → {file:?}"
    );
    assert!(!stem.starts_with('.'), "{org:?} → {file:?}");
    let device = stem.split('.').next().unwrap().to_ascii_uppercase();
    assert!(
        !["CON", "PRN", "AUX", "NUL", "COM1", "COM9", "LPT1", "LPT9"].contains(&device.as_str()),
        "{org:?} → {file:?}"
    );
}

#[test]
fn report_file_names_are_portable_for_any_organisation_name() {
    let long = "广".repeat(99);
    let longer = "团".repeat(400);
    // (organisation full name, the file name wanted where it is known exactly)
    let table: &[(&str, Option<&str>)] = &[
        (
            "深圳市某中学初一1班团支部",
            Some("深圳市某中学初一1班团支部.xlsx"),
        ),
        ("a/b\\c:d*e?f\"g<h>i|j", Some("a_b_c_d_e_f_g_h_i_j.xlsx")),
        ("..", Some("_.xlsx")),
        ("../../etc/passwd", Some("_.._.._etc_passwd.xlsx")),
        (".hidden", Some("_.hidden.xlsx")),
        ("a\0b", Some("a_b.xlsx")),
        ("tab\there\nnewline", Some("tab_here_newline.xlsx")),
        ("团支部\u{202E}xslx.exe", Some("团支部xslx.exe.xlsx")),
        (
            "零\u{200B}宽\u{FEFF}字\u{2066}符\u{2069}",
            Some("零宽字符.xlsx"),
        ),
        ("trailing dots...", Some("trailing dots.xlsx")),
        ("trailing spaces   ", Some("trailing spaces.xlsx")),
        ("  leading spaces", Some("leading spaces.xlsx")),
        ("CON", Some("_CON.xlsx")),
        ("con", Some("_con.xlsx")),
        ("nul.团支部", Some("_nul.团支部.xlsx")),
        ("COM1", Some("_COM1.xlsx")),
        ("lpt9", Some("_lpt9.xlsx")),
        ("CONSOLE", Some("CONSOLE.xlsx")),
        ("COM10", Some("COM10.xlsx")),
        ("", Some("_.xlsx")),
        ("   ", Some("_.xlsx")),
        ("\u{200B}", Some("_.xlsx")),
        (&long, None),
        (&longer, None),
    ];
    for (org, want) in table {
        let file = org_file_name(org);
        assert_portable(org, &file);
        if let Some(want) = want {
            assert_eq!(&file, want, "{org:?}");
        }
    }
    // 99 characters of 3 bytes are cut at a character boundary to 83 (249 bytes).
    assert_eq!(org_file_name(&long), format!("{}.xlsx", "广".repeat(83)));
    assert_eq!(org_file_name(&longer).len(), 254);
}

#[test]
fn report_file_names_are_unique_within_an_upload() {
    let common = "团".repeat(90);
    // Groups of organisations whose safe names meet on some file system.
    let orgs: Vec<String> = vec![
        "广州市一中/实验班团支部".into(),
        "广州市一中_实验班团支部".into(),
        "广州市一中:实验班团支部".into(),
        "Branch".into(),
        "BRANCH".into(),
        "caf\u{e9}".into(),
        "cafe\u{301}".into(),
        "summary".into(),
        "SUMMARY".into(),
        "escalations".into(),
        format!("{common}一"),
        format!("{common}二"),
        "a\u{200B}b".into(),
        "ab".into(),
    ];
    let names = book_names(orgs.iter().map(String::as_str));
    assert_eq!(names.len(), orgs.len());
    let mut keys = BTreeSet::new();
    for (org, name) in orgs.iter().zip(&names) {
        assert_portable(org, name);
        // Case and normalisation folded, as Windows and macOS compare names.
        use unicode_normalization::UnicodeNormalization;
        let key: String = name.nfc().flat_map(char::to_lowercase).collect();
        assert!(keys.insert(key), "{org:?} → {name:?} is taken");
        assert!(
            !["summary.xlsx", "summary.json", "escalations.xlsx"]
                .contains(&name.to_lowercase().as_str()),
            "{org:?} → {name:?}"
        );
    }
    // The organisation whose name needed no change keeps it, whatever the order; the
    // other gets a deterministic suffix.
    assert_eq!(names[1], "广州市一中_实验班团支部.xlsx");
    assert!(names[0].starts_with("广州市一中_实验班团支部~") && names[0].ends_with(".xlsx"));
    assert_eq!(names, book_names(orgs.iter().map(String::as_str)));
}

/// An org tree of the fixture plus the given branches under 深圳市某中学团委.
fn tree_with(branches: &[&str]) -> OrgTree {
    let mut csv = ORGS_CSV.to_string();
    for (i, b) in branches.iter().enumerate() {
        csv.push_str(&format!("{b},支部{i},团支部,深圳市某中学团委,,,\n"));
    }
    OrgTree::parse(csv.as_bytes()).expect("org file with hostile names is valid")
}

/// Validates a roster whose rows each have one error, one row per branch, and writes
/// the reports; returns (summary.json, files written).
fn reports_for(branches: &[&str]) -> (serde_json::Value, Vec<String>, tempfile::TempDir) {
    let tree = tree_with(branches);
    let rows: Vec<_> = branches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            Person::new(i + 1)
                .branch(b)
                .text(schemas::Field::Phone, "123")
                .cells(TemplateKind::Members)
        })
        .collect();
    let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
    let resolver = tree.resolver(GUANGDONG).unwrap();
    let v = match validate_bytes(&bytes, &options(TemplateKind::Members), &resolver).unwrap() {
        Outcome::Accepted(v) => v,
        Outcome::Rejected(r) => panic!("rejected: {r:?}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let set = report::write_reports(&v, dir.path()).expect("reports written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    for f in &set.files {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }
    (json, set.files, dir)
}

#[test]
fn an_org_name_of_99_chinese_characters_gets_its_workbook() {
    let long = format!("{}团支部", "广".repeat(96));
    assert_eq!(long.chars().count(), 99);
    let (json, files, _dir) = reports_for(&[&long]);
    let books = workbooks(&json);
    assert_eq!(books.len(), 1);
    assert_eq!(books[0].1, long);
    assert!(files.contains(&books[0].0));
    assert!(books[0].0.len() <= 255);
}

#[test]
fn orgs_differing_only_in_slash_and_underscore_get_their_own_workbooks() {
    let a = "广州市一中/实验班团支部";
    let b = "广州市一中_实验班团支部";
    let (json, _files, dir) = reports_for(&[a, b]);
    let books = workbooks(&json);
    assert_eq!(books.len(), 2);
    let owners: BTreeSet<&str> = books.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(owners, BTreeSet::from([a, b]));
    assert_ne!(books[0].0, books[1].0);
    // Each workbook holds its own organisation's row and nobody else's.
    for (file, org) in &books {
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let text = cells_text(&bytes);
        assert!(text.iter().any(|c| c == org), "{file} shows {org}");
        let other = if org == a { b } else { a };
        assert!(!text.iter().any(|c| c == other), "{file} leaks {other}");
    }
}

/// Every cell of the first sheet, as text.
fn cells_text(bytes: &[u8]) -> Vec<String> {
    use calamine::{Reader, Xlsx, open_workbook_from_rs};
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let name = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&name).unwrap();
    range.used_cells().map(|(_, _, c)| c.to_string()).collect()
}

// ---- Org files: the rosters' guards and a bounded walk ----

const ORG_HEAD: &str = "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号,书记姓名,书记身份证号码,书记手机号码\n";

fn org_problems(csv: &str) -> Vec<String> {
    match OrgTree::parse(csv.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

/// A national root, a province and a chain of `depth` committees below the province.
fn chain_csv(depth: usize) -> String {
    let mut csv = ORG_HEAD.to_string();
    csv.push_str("共青团中央,团中央,团的领导机关,,,,,,,\n");
    csv.push_str("共青团广东省委员会,广东,团的领导机关,共青团中央,,44,,,,\n");
    let mut parent = "共青团广东省委员会".to_string();
    for i in 0..depth {
        let name = format!("第{i}级团委");
        csv.push_str(&format!("{name},{i},团委,{parent},,,,,,\n"));
        parent = name;
    }
    csv
}

#[test]
fn a_chain_of_100000_organisations_is_checked_without_a_quadratic_walk() {
    // Within the bound: accepted, and scope answers at the bottom of the tree.
    let ok = OrgTree::parse(chain_csv(30).as_bytes()).expect("30 levels below a province");
    let bottom = ok.find("第29级团委").unwrap();
    let top = ok.find("共青团中央").unwrap();
    assert!(ok.is_within(bottom, top));
    assert!(!ok.is_within(top, bottom));
    // A chain of 100,000: one problem naming the depth bound, not 10^10 steps.
    let problems = org_problems(&chain_csv(100_000));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("层级超过 32 层"), "{problems:?}");
    // A loop of 100,000: reported once, with the first lines.
    let mut csv = ORG_HEAD.to_string();
    for i in 0..100_000 {
        let parent = (i + 1) % 100_000;
        csv.push_str(&format!("团委{i},{i},团委,团委{parent},,,,,,\n"));
    }
    let problems = org_problems(&csv);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("上级组织关系形成循环（第2、3、4"),
        "{problems:?}"
    );
}

#[test]
fn secretary_fields_are_checked_like_a_roster_row() {
    let good_id = id_for(
        "440305",
        chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        1,
    );
    let mut bad_check = good_id.clone();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '1' { '2' } else { '1' });
    let bad_region = id_for(
        "990305",
        chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        1,
    );
    let bad_birth = {
        let first17 = "44030519901301001";
        format!(
            "{first17}{}",
            pipeline::rules::identity::id_check_char(first17)
        )
    };
    // (name, ID number, phone, the problem's words, or none)
    let table: Vec<(&str, &str, &str, Option<&str>)> = vec![
        ("张三", &good_id, "13800138000", None),
        ("张三", &good_id, "", None),
        ("张三", &bad_check, "13800138000", Some("书记身份证号码")),
        ("张三", &bad_region, "13800138000", Some("书记身份证号码")),
        ("张三", &bad_birth, "13800138000", Some("书记身份证号码")),
        ("张三", "12345", "13800138000", Some("书记身份证号码")),
        ("张三", &good_id, "123", Some("书记手机号码")),
        ("张3", &good_id, "13800138000", Some("书记姓名")),
    ];
    for (name, id, phone, want) in table {
        let csv = format!(
            "{ORG_HEAD}共青团中央,团中央,团的领导机关,,,,,,,\n共青团广东省委员会,广东,团的领导机关,共青团中央,,44,,{name},{id},{phone}\n"
        );
        let problems = org_problems(&csv);
        match want {
            None => assert!(problems.is_empty(), "{name} {id} {phone}: {problems:?}"),
            Some(words) => {
                assert_eq!(problems.len(), 1, "{name} {id} {phone}: {problems:?}");
                assert!(
                    problems[0].starts_with("第3行：") && problems[0].contains(words),
                    "{name} {id} {phone}: {problems:?}"
                );
            }
        }
    }
}

#[test]
fn a_province_code_below_a_provincial_organisation_must_be_the_inherited_one() {
    // (the city committee's own code, problem expected)
    for (code, problem) in [("", false), ("44", false), ("11", true)] {
        let csv = format!(
            "{ORG_HEAD}共青团中央,团中央,团的领导机关,,,,,,,\n共青团广东省委员会,广东,团的领导机关,共青团中央,,44,,,,\n共青团深圳市委员会,深圳,团的领导机关,共青团广东省委员会,,{code},,,,\n"
        );
        let problems = org_problems(&csv);
        assert_eq!(!problems.is_empty(), problem, "{code}: {problems:?}");
        if problem {
            assert!(
                problems[0].contains("“11”与上级组织的省份代码“44”不一致"),
                "{problems:?}"
            );
        }
    }
}

#[test]
fn a_cycle_through_registered_organisations_is_rejected() {
    use pipeline::orgs::RegisteredOrg;
    use std::collections::HashMap;
    // Registered: 中央 → 广东 → 深圳 → 某中学. The file moves 广东 below 某中学.
    let registered = |keys: &[String]| -> Result<HashMap<String, RegisteredOrg>, ()> {
        Ok(keys
            .iter()
            .filter(|k| k.as_str() == "某中学团委")
            .map(|k| {
                (
                    k.clone(),
                    RegisteredOrg {
                        full_name: "某中学团委".into(),
                        province: Some("44".into()),
                        is_root: false,
                        ancestors: vec![
                            "共青团中央".into(),
                            "共青团广东省委员会".into(),
                            "共青团深圳市委员会".into(),
                        ],
                    },
                )
            })
            .collect())
    };
    let looped = format!("{ORG_HEAD}共青团广东省委员会,广东,团的领导机关,某中学团委,,44,,,,\n");
    let problems = OrgTree::parse_with(looped.as_bytes(), registered)
        .unwrap()
        .expect_err("a loop through the registry");
    assert!(
        problems.problems[0].contains("形成循环"),
        "{:?}",
        problems.problems
    );
    // Below a registered organisation that is not its own descendant: fine.
    let fine = format!("{ORG_HEAD}某中学初一1班团支部,初一1班,团支部,某中学团委,,,,,,\n");
    let tree = OrgTree::parse_with(fine.as_bytes(), registered)
        .unwrap()
        .unwrap();
    assert_eq!(tree.get(0).province.as_deref(), Some("44"));
}

#[test]
fn short_name_suggestions_normalise_both_sides_offline() {
    // The short name is stored with a full-width digit and a zero-width space; the
    // roster types it plainly.
    let csv = format!(
        "{ORG_HEAD}共青团中央,团中央,团的领导机关,,,,,,,\n共青团广东省委员会,广东,团的领导机关,共青团中央,,44,,,,\n深圳市某中学初一1班团支部,初一\u{200B}１班,团支部,共青团广东省委员会,,,,,,\n"
    );
    let tree = OrgTree::parse(csv.as_bytes()).unwrap();
    let resolver = tree.resolver("共青团广东省委员会").unwrap();
    use pipeline::orgs::OrgResolver;
    let got = resolver.resolve(&["初一1班"]).unwrap();
    assert_eq!(
        got[0].as_ref().unwrap_err(),
        &vec!["深圳市某中学初一1班团支部".to_string()]
    );
}

// ---- Cells: bounded memory whatever the archive declares ----

/// An xlsx whose first sheet's XML is written by `sheet` (streamed: a 3 GB cell is
/// never held), with the minimal parts a reader needs.
pub fn raw_xlsx(sheet: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut z = ::zip::ZipWriter::new(&mut out);
        let opts = ::zip::write::SimpleFileOptions::default()
            .compression_method(::zip::CompressionMethod::Deflated)
            .compression_level(Some(9))
            .large_file(true);
        let parts: [(&str, &str); 4] = [
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
        ];
        for (name, text) in parts {
            z.start_file(name, opts).unwrap();
            z.write_all(text.as_bytes()).unwrap();
        }
        z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        sheet(&mut z).unwrap();
        z.finish().unwrap();
    }
    out.into_inner()
}

const SHEET_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_TAIL: &str = "</sheetData></worksheet>";

/// Column letters of a 0-based index.
fn letters(mut c: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A row of inline strings at Excel row `r` (1-based).
fn row_xml(r: u64, cells: &[String]) -> String {
    let mut x = format!(r#"<row r="{r}">"#);
    for (c, v) in cells.iter().enumerate() {
        if v.is_empty() {
            continue;
        }
        x.push_str(&format!(
            r#"<c r="{}{r}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
            letters(c),
            xml_escape(v)
        ));
    }
    x.push_str("</row>");
    x
}

/// The member template's header and one valid row, as cell texts.
fn member_rows(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let t = TemplateKind::Members.template();
    let header = t
        .columns
        .iter()
        .map(|c| c.field.header().to_string())
        .collect();
    let rows = (0..n)
        .map(|i| {
            let cells = Person::new(i + 1).cells(TemplateKind::Members);
            t.columns
                .iter()
                .map(|c| match cells.get(&c.field) {
                    Some(V::S(s)) => s.clone(),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    (header, rows)
}

fn outcome(bytes: &[u8]) -> Outcome {
    let tree = tree();
    let resolver = tree.resolver(GUANGDONG).unwrap();
    validate_bytes(bytes, &options(TemplateKind::Members), &resolver).expect("pipeline ran")
}

#[test]
fn a_3_gb_cell_compressed_to_3_mb_gets_a_file_verdict() {
    let (header, rows) = member_rows(1);
    let bytes = raw_xlsx(|w| {
        w.write_all(SHEET_HEAD.as_bytes())?;
        w.write_all(row_xml(1, &header).as_bytes())?;
        w.write_all(br#"<row r="2"><c r="A2" t="inlineStr"><is><t>"#)?;
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..3072 {
            w.write_all(&chunk)?;
        }
        w.write_all(b"</t></is></c></row>")?;
        w.write_all(row_xml(3, &rows[0]).as_bytes())?;
        w.write_all(SHEET_TAIL.as_bytes())
    });
    assert!(bytes.len() < 8 << 20, "{} bytes", bytes.len());
    match outcome(&bytes) {
        Outcome::Rejected(r) => {
            assert_eq!(r.code, E::FileTooLarge, "{r:?}");
            assert!(r.message.contains("32767"), "{r:?}");
        }
        Outcome::Accepted(_) => panic!("a 3 GB cell was read"),
    }
}

/// Sets every size a zip declares for `entry` (local header and central directory) to
/// `declared`, leaving the data as it is: an archive that lies.
fn lie_about_size(bytes: &mut [u8], entry: &str, declared: u32) {
    let name = entry.as_bytes();
    let mut i = 0;
    while i + 46 < bytes.len() {
        let sig = u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        if sig == 0x0403_4b50 {
            let n = u16::from_le_bytes(bytes[i + 26..i + 28].try_into().unwrap()) as usize;
            if &bytes[i + 30..i + 30 + n] == name {
                bytes[i + 22..i + 26].copy_from_slice(&declared.to_le_bytes());
            }
        } else if sig == 0x0201_4b50 {
            let n = u16::from_le_bytes(bytes[i + 28..i + 30].try_into().unwrap()) as usize;
            if &bytes[i + 46..i + 46 + n] == name {
                bytes[i + 24..i + 28].copy_from_slice(&declared.to_le_bytes());
            }
        }
        i += 1;
    }
}

#[test]
fn a_declared_size_that_lies_is_not_believed() {
    let (header, _) = member_rows(1);
    let mut bytes = raw_xlsx(|w| {
        w.write_all(SHEET_HEAD.as_bytes())?;
        w.write_all(row_xml(1, &header).as_bytes())?;
        w.write_all(br#"<row r="2"><c r="A2" t="inlineStr"><is><t>"#)?;
        w.write_all(&vec![b'a'; 64 << 20])?;
        w.write_all(b"</t></is></c></row>")?;
        w.write_all(SHEET_TAIL.as_bytes())
    });
    lie_about_size(&mut bytes, "xl/worksheets/sheet1.xml", 1000);
    // Whatever the reader makes of it, a verdict, never a read of 64 MB as one cell.
    match outcome(&bytes) {
        Outcome::Rejected(r) => assert!(
            matches!(r.code, E::FileTooLarge | E::FileUnreadable),
            "{r:?}"
        ),
        Outcome::Accepted(_) => panic!("a lying archive was read"),
    }
}

#[test]
fn a_row_numbered_past_excels_last_row_is_a_file_verdict() {
    // (the second data row's number, accepted?): Excel's last row is 1,048,576; past it
    // no spreadsheet program writes, and the number would not fit where rows are stored.
    let table: &[(u64, bool)] = &[
        (3, true),
        (1_048_575, true),
        (1_048_576, true),
        (1_048_577, false),
        (2_147_483_648, false),
        (4_294_967_295, false),
    ];
    let (header, rows) = member_rows(2);
    for &(row, accepted) in table {
        let bytes = raw_xlsx(|w| {
            w.write_all(SHEET_HEAD.as_bytes())?;
            w.write_all(row_xml(1, &header).as_bytes())?;
            w.write_all(row_xml(2, &rows[0]).as_bytes())?;
            w.write_all(row_xml(row, &rows[1]).as_bytes())?;
            w.write_all(SHEET_TAIL.as_bytes())
        });
        match (outcome(&bytes), accepted) {
            (Outcome::Accepted(v), true) => {
                assert_eq!(v.rows.height(), 2, "row {row}");
                let numbers: Vec<u32> = v
                    .rows
                    .column(pipeline::read::ROW)
                    .unwrap()
                    .u32()
                    .unwrap()
                    .into_no_null_iter()
                    .collect();
                assert_eq!(numbers, [2, row as u32], "row {row}");
            }
            (Outcome::Rejected(r), false) => {
                assert_eq!(r.code, E::FileUnreadable, "row {row}: {r:?}");
                assert!(r.message.contains(&format!("第 {row} 行")), "{}", r.message);
                assert!(r.message.contains("1048576"), "{}", r.message);
            }
            (Outcome::Accepted(_), false) => panic!("row {row}: accepted"),
            (Outcome::Rejected(r), true) => panic!("row {row}: {r:?}"),
        }
    }
}

#[test]
fn a_row_of_16384_columns_is_read() {
    let (header, mut rows) = member_rows(1);
    rows[0].resize(16_384, "x".to_string());
    let bytes = raw_xlsx(|w| {
        w.write_all(SHEET_HEAD.as_bytes())?;
        w.write_all(row_xml(1, &header).as_bytes())?;
        w.write_all(row_xml(2, &rows[0]).as_bytes())?;
        w.write_all(SHEET_TAIL.as_bytes())
    });
    match outcome(&bytes) {
        Outcome::Accepted(v) => assert_eq!(v.rows.height(), 1),
        Outcome::Rejected(r) => panic!("{r:?}"),
    }
}

#[test]
fn a_cell_over_32767_characters_is_a_row_error_shown_cut() {
    use schemas::Field;
    let (header, mut rows) = member_rows(2);
    let t = TemplateKind::Members.template();
    let at = |f: Field| t.columns.iter().position(|c| c.field == f).unwrap();
    // 40,000 characters in the name (a field without a length of its own) and in
    // 学习工作单位 (limited to 100).
    rows[0][at(Field::Name)] = "张".repeat(40_000);
    rows[1][at(Field::Workplace)] = "单".repeat(40_000);
    let bytes = raw_xlsx(|w| {
        w.write_all(SHEET_HEAD.as_bytes())?;
        w.write_all(row_xml(1, &header).as_bytes())?;
        w.write_all(row_xml(2, &rows[0]).as_bytes())?;
        w.write_all(row_xml(3, &rows[1]).as_bytes())?;
        w.write_all(SHEET_TAIL.as_bytes())
    });
    let v = match outcome(&bytes) {
        Outcome::Accepted(v) => v,
        Outcome::Rejected(r) => panic!("{r:?}"),
    };
    let f = findings(&v);
    assert!(
        f[&2]
            .iter()
            .any(|(c, field, _)| *c == E::TextTooLong && field == Field::Name.key()),
        "{f:?}"
    );
    assert!(
        f[&3]
            .iter()
            .any(|(c, field, _)| *c == E::TextTooLong && field == Field::Workplace.key()),
        "{f:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let set = report::write_reports(&v, dir.path()).expect("reports of a too-long cell");
    let book = set
        .books
        .iter()
        .find(|(_, org)| org == BRANCH)
        .map(|(file, _)| file.clone())
        .unwrap();
    let bytes = std::fs::read(dir.path().join(book)).unwrap();
    let longest = cells_text(&bytes)
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap();
    assert_eq!(longest, 32_767, "shown cut to Excel's limit");
}

#[test]
fn control_characters_in_any_text_field_are_a_row_error() {
    use schemas::Field;
    // (field, text, a control_character finding wanted)
    let table: &[(Field, &str, bool)] = &[
        (Field::Name, "张\u{0}三", true),
        (Field::Name, "张\u{1}三", true),
        (Field::Ethnicity, "汉族\u{1b}", true),
        (Field::Workplace, "某单位\u{7f}", true),
        (Field::Workplace, "某单位\u{85}", true),
        (Field::Branch, "深圳市某中学初一1班团支部\u{8}", true),
        (Field::Phone, "1380013800\u{0}0", true),
        (Field::Workplace, "某单位\t分部", false),
        (Field::Workplace, "某单位\n分部", false),
    ];
    for &(field, text, want) in table {
        let rows = vec![
            Person::new(1)
                .text(field, text)
                .cells(TemplateKind::Members),
        ];
        let bytes = workbook(TemplateKind::Members, &[], None, &rows, false);
        let v = validate(&bytes, TemplateKind::Members, GUANGDONG);
        let got = findings(&v)
            .get(&2)
            .map(|f| {
                f.iter()
                    .any(|(c, k, _)| *c == E::ControlCharacter && k == field.key())
            })
            .unwrap_or(false);
        assert_eq!(got, want, "{field:?} {text:?}: {:?}", findings(&v));
        if want {
            assert_eq!(
                v.counts().unwrap().valid,
                0,
                "{field:?} {text:?} never loads"
            );
        }
    }
}

#[test]
fn org_files_get_the_rosters_guards() {
    let bomb = raw_xlsx(|w| {
        w.write_all(SHEET_HEAD.as_bytes())?;
        w.write_all(br#"<row r="1"><c r="A1" t="inlineStr"><is><t>"#)?;
        w.write_all(&vec![b'a'; 64 << 20])?;
        w.write_all(b"</t></is></c></row>")?;
        w.write_all(SHEET_TAIL.as_bytes())
    });
    let far = raw_xlsx(|w| {
        w.write_all(SHEET_HEAD.as_bytes())?;
        w.write_all(br#"<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>"#)?;
        w.write_all(
            br#"<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>"#,
        )?;
        w.write_all(SHEET_TAIL.as_bytes())
    });
    let mut truncated = bomb.clone();
    truncated.truncate(truncated.len() / 2);
    // (what, bytes, words the one problem holds)
    let table: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a 64 MB cell", bomb, "32767"),
        ("a cell at XFD1048576", far, "表头"),
        ("a truncated archive", truncated, "无法读取"),
        ("not a table", b"PK\x03\x04garbage".to_vec(), "无法读取"),
        (
            "an html page",
            b"<html><body>x</body></html>".to_vec(),
            "表头",
        ),
    ];
    for (what, bytes, words) in table {
        let problems = match OrgTree::parse(&bytes) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e.problems,
        };
        assert!(problems[0].contains(words), "{what}: {problems:?}");
    }
}

// ---- Fuzzing findings (fuzz/regressions/) ----

fn regression(name: &str) -> Vec<u8> {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read(here.join("../fuzz/regressions").join(name)).unwrap()
}

/// `roster_reader`: a 7.6 KB xls whose directory's sector chain loops made calamine
/// append sectors until a 4 GB allocation failed. Now a verdict before calamine reads.
#[test]
fn fuzz_finding_an_xls_whose_sector_chain_loops_gets_a_verdict() {
    // The second loops through sectors past the end of the file, which the parser
    // reads as zeros.
    for name in [
        "roster_reader-cfb-loop.xls",
        "roster_reader-cfb-loop-past-eof.xls",
    ] {
        match outcome(&regression(name)) {
            Outcome::Rejected(r) => {
                assert_eq!(r.code, E::FileUnreadable, "{name}: {r:?}");
                assert!(r.message.contains("成环"), "{name}: {r:?}");
            }
            Outcome::Accepted(_) => panic!("{name}: a looping xls was read"),
        }
    }
}

/// `org_file`: an xls on which calamine panics (an assertion in its CFB utilities).
/// The guard turns it into a problem of the file.
#[test]
fn fuzz_finding_a_calamine_panic_in_an_org_file_is_a_problem() {
    let problems = OrgTree::parse(&regression("org_file-calamine-panic.bin"))
        .expect_err("a broken org file")
        .problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
}

/// `roster_reader`: an xls with a cell at a far row and column made calamine allocate a
/// dense grid over the box (137 GB asked) while opening the workbook. Now a verdict from
/// the cells' positions, read before calamine.
#[test]
fn fuzz_finding_an_xls_cell_far_outside_a_sheet_gets_a_verdict() {
    // The second holds both a `Book` and a `Workbook` stream, its far cell in the one
    // the parser prefers (`Workbook`): both are checked, each sheet read from where its
    // BOUNDSHEET record says, as the parser reads them.
    for name in [
        "roster_reader-xls-far-cell.xls",
        "roster_reader-xls-far-cell-2.xls",
    ] {
        match outcome(&regression(name)) {
            Outcome::Rejected(r) => assert_eq!(r.code, E::FileUnreadable, "{name}: {r:?}"),
            Outcome::Accepted(_) => panic!("{name}: read"),
        }
    }
}
