//! Builders for table-driven tests: a fixture org tree, people with valid IDs, rosters
//! written as real xlsx bytes, and validation returning codes per row.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use pipeline::orgs::OrgTree;
use pipeline::rules::identity::id_check_char;
use pipeline::{Outcome, ReadLimits, ValidateOptions, Validation, validate_bytes};
use polars::prelude::*;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use schemas::{ErrorCode, Field, TemplateKind};

pub const AS_OF: (i32, u32, u32) = (2026, 11, 21);

pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(AS_OF.0, AS_OF.1, AS_OF.2).unwrap()
}

pub const NATIONAL: &str = "共青团中央";
pub const GUANGDONG: &str = "共青团广东省委员会";
pub const SCHOOL: &str = "深圳市某中学团委";
pub const BRANCH: &str = "深圳市某中学初一1班团支部";
pub const BRANCH_PARENS: &str = "深圳市某中学初一（2）班团支部";
pub const BEIJING_BRANCH: &str = "北京市某中学高一1班团支部";
pub const XINJIANG_BRANCH: &str = "乌鲁木齐市某中学高一1班团支部";
pub const BINGTUAN_BRANCH: &str = "石河子市某中学高一1班团支部";

pub const ORGS_CSV: &str = "组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号
共青团中央,团中央,团的领导机关,,,,
共青团广东省委员会,广东团省委,团的领导机关,共青团中央,,44,
共青团深圳市委员会,深圳团市委,团的领导机关,共青团广东省委员会,,,
深圳市某中学团委,某中学,团委,共青团深圳市委员会,,,4403000001
深圳市某中学初一1班团支部,初一1班,团支部,深圳市某中学团委,,,
深圳市某中学初一（2）班团支部,初一2班,团支部,深圳市某中学团委,,,
共青团北京市委员会,北京团市委,团的领导机关,共青团中央,,11,
北京市某中学团委,北京某中学,团委,共青团北京市委员会,,,
北京市某中学高一1班团支部,高一1班,团支部,北京市某中学团委,,,
共青团新疆维吾尔自治区委员会,新疆团区委,团的领导机关,共青团中央,,65,
乌鲁木齐市某中学团委,乌市某中学,团委,共青团新疆维吾尔自治区委员会,,,
乌鲁木齐市某中学高一1班团支部,乌市高一1班,团支部,乌鲁木齐市某中学团委,,,
共青团新疆生产建设兵团委员会,兵团团委,团的领导机关,共青团中央,,66,
石河子市某中学团委,石河子某中学,团委,共青团新疆生产建设兵团委员会,,,
石河子市某中学高一1班团支部,石河子高一1班,团支部,石河子市某中学团委,,,
";

pub fn tree() -> OrgTree {
    OrgTree::parse(ORGS_CSV.as_bytes()).expect("fixture org file is valid")
}

/// Province code of a fixture branch.
fn province_of(branch: &str) -> &'static str {
    match branch {
        BEIJING_BRANCH => "11",
        XINJIANG_BRANCH => "65",
        BINGTUAN_BRANCH => "66",
        _ => "44",
    }
}

/// A cell value.
#[derive(Debug, Clone)]
pub enum V {
    S(String),
    N(f64),
    D(i32, u32, u32),
    Empty,
}

pub fn s(v: &str) -> V {
    V::S(v.to_string())
}

#[derive(Debug, Clone)]
enum Dev {
    Auto,
    Missing,
    Text(String),
}

/// A person with a valid ID, valid in every column unless told otherwise.
#[derive(Debug, Clone)]
pub struct Person {
    seq: usize,
    pub birth: NaiveDate,
    region: String,
    join: String,
    branch: String,
    dev: Dev,
    overrides: Vec<(Field, V)>,
}

/// The ID number of a person born on `birth` in `region`, sequence `seq`.
pub fn id_for(region: &str, birth: NaiveDate, seq: usize) -> String {
    let first17 = format!("{region}{}{:03}", birth.format("%Y%m%d"), seq % 1000);
    format!("{first17}{}", id_check_char(&first17))
}

impl Person {
    pub fn new(seq: usize) -> Person {
        Person {
            seq,
            birth: NaiveDate::from_ymd_opt(2008, 6, 15).unwrap(),
            region: "440305".into(),
            join: "2022-05".into(),
            branch: BRANCH.into(),
            dev: Dev::Auto,
            overrides: Vec::new(),
        }
    }
    pub fn born(mut self, y: i32, m: u32, d: u32) -> Self {
        self.birth = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        self
    }
    pub fn joined(mut self, text: &str) -> Self {
        self.join = text.into();
        self
    }
    pub fn branch(mut self, b: &str) -> Self {
        self.branch = b.into();
        self
    }
    pub fn region(mut self, r: &str) -> Self {
        self.region = r.into();
        self
    }
    pub fn no_dev(mut self) -> Self {
        self.dev = Dev::Missing;
        self
    }
    pub fn dev(mut self, d: &str) -> Self {
        self.dev = Dev::Text(d.into());
        self
    }
    pub fn set(mut self, f: Field, v: V) -> Self {
        self.overrides.push((f, v));
        self
    }
    pub fn text(self, f: Field, v: &str) -> Self {
        self.set(f, s(v))
    }
    pub fn id(&self) -> String {
        id_for(&self.region, self.birth, self.seq)
    }
    /// This person's ID with another (possibly impossible) birth date `yyyymmdd`,
    /// with a correct check character.
    pub fn id_born(&self, yyyymmdd: &str) -> String {
        let first17 = format!("{}{yyyymmdd}{:03}", self.region, self.seq % 1000);
        format!("{first17}{}", id_check_char(&first17))
    }
    /// This person's ID with a wrong check character.
    pub fn id_bad_check(&self) -> String {
        let mut id = self.id();
        let last = id.pop().unwrap();
        id.push(if last == '1' { '2' } else { '1' });
        id
    }
    /// A development number consistent with the join year and the branch's province.
    pub fn auto_dev(&self) -> String {
        let year: String = self
            .join
            .chars()
            .filter(char::is_ascii_digit)
            .take(4)
            .collect();
        format!("{year}{}{:06}", province_of(&self.branch), self.seq)
    }

    pub fn cells(&self, template: TemplateKind) -> BTreeMap<Field, V> {
        let mut m = BTreeMap::new();
        m.insert(Field::Name, s("张三"));
        m.insert(Field::IdNumber, V::S(self.id()));
        m.insert(Field::Ethnicity, s("汉族"));
        m.insert(Field::PoliticalStatus, s("共青团员"));
        m.insert(Field::JoinedOn, V::S(self.join.clone()));
        match &self.dev {
            Dev::Auto => {
                m.insert(Field::DevNumber, V::S(self.auto_dev()));
            }
            Dev::Missing => {}
            Dev::Text(t) => {
                m.insert(Field::DevNumber, s(t));
            }
        }
        m.insert(Field::Education, s("初中在读"));
        m.insert(Field::Phone, s("13800138000"));
        match template {
            TemplateKind::Members => {
                m.insert(Field::Occupation, s("学生"));
                m.insert(Field::Branch, V::S(self.branch.clone()));
                m.insert(Field::IsCadre, s("否"));
            }
            TemplateKind::Cadres => {
                m.insert(Field::Duty, s("书记"));
                m.insert(Field::AppointedOn, s("2024-09"));
                m.insert(Field::CadreNature, s("兼职"));
                m.insert(Field::PartyCommitteeMember, s("否"));
            }
        }
        for (f, v) in &self.overrides {
            m.insert(*f, v.clone());
        }
        m
    }
}

/// Writes a roster: `titles` title rows, the header (canonical or given), then rows.
pub fn workbook(
    template: TemplateKind,
    titles: &[&str],
    headers: Option<&[&str]>,
    rows: &[BTreeMap<Field, V>],
    date_1904: bool,
) -> Vec<u8> {
    let t = template.template();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (i, title) in titles.iter().enumerate() {
        ws.write_string(i as u32, 0, *title).unwrap();
    }
    let h = titles.len() as u32;
    let default_headers: Vec<&str> = t.columns.iter().map(|c| c.field.header()).collect();
    let headers = headers.unwrap_or(&default_headers);
    for (i, name) in headers.iter().enumerate() {
        ws.write_string(h, i as u16, *name).unwrap();
    }
    for (k, row) in rows.iter().enumerate() {
        let x = h + 1 + k as u32;
        for (i, c) in t.columns.iter().enumerate() {
            match row.get(&c.field) {
                None | Some(V::Empty) => {}
                Some(V::S(v)) => {
                    ws.write_string(x, i as u16, v).unwrap();
                }
                Some(V::N(n)) => {
                    ws.write_number(x, i as u16, *n).unwrap();
                }
                Some(V::D(y, m, d)) => {
                    let dt = ExcelDateTime::from_ymd(*y as u16, *m as u8, *d as u8).unwrap();
                    ws.write_date_with_format(x, i as u16, &dt, &date).unwrap();
                }
            }
        }
    }
    if date_1904 {
        // rust_xlsxwriter has no 1904 switch: set the flag in the saved workbook.xml.
        let bytes = wb.save_to_buffer().unwrap();
        return set_1904(&bytes);
    }
    wb.save_to_buffer().unwrap()
}

/// Rewrites a saved workbook to the 1904 date system, shifting date serials so the
/// dates stay the same.
fn set_1904(bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut zin = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zout = ::zip::ZipWriter::new(&mut out);
        for i in 0..zin.len() {
            let mut f = zin.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mut content = String::new();
            f.read_to_string(&mut content).unwrap();
            if name == "xl/workbook.xml" {
                content = content.replace("<workbookPr", "<workbookPr date1904=\"1\"");
            }
            if name.starts_with("xl/worksheets/") {
                // Only date cells carry the date style (s="1"); shift their serials.
                let re = regex_lite_shift(&content);
                content = re;
            }
            zout.start_file(name, ::zip::write::SimpleFileOptions::default())
                .unwrap();
            zout.write_all(content.as_bytes()).unwrap();
        }
        zout.finish().unwrap();
    }
    out.into_inner()
}

/// Subtracts 1462 days from every `<c ... s="N"><v>serial</v>` cell with a style.
fn regex_lite_shift(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<c ") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("</c>")
            .map(|e| start + e + 4)
            .unwrap_or(rest.len());
        let cell = &rest[start..end];
        if cell.contains(" s=\"") && !cell.contains("t=\"") {
            if let (Some(a), Some(b)) = (cell.find("<v>"), cell.find("</v>")) {
                let serial: f64 = cell[a + 3..b].parse().unwrap();
                out.push_str(&cell[..a + 3]);
                out.push_str(&(serial - 1462.0).to_string());
                out.push_str(&cell[b..]);
            } else {
                out.push_str(cell);
            }
        } else {
            out.push_str(cell);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

pub fn options(template: TemplateKind) -> ValidateOptions {
    ValidateOptions {
        template,
        as_of: as_of(),
        limits: ReadLimits::default(),
        sheet: None,
        progress: None,
        issue_rows_only: false,
    }
}

/// Validates bytes as `uploader`; panics on a file-level rejection.
pub fn validate(bytes: &[u8], template: TemplateKind, uploader: &str) -> Validation {
    let tree = tree();
    let resolver = tree.resolver(uploader).expect("uploader in fixture");
    match validate_bytes(bytes, &options(template), &resolver).expect("pipeline ran") {
        Outcome::Accepted(v) => *v,
        Outcome::Rejected(r) => panic!("rejected: {r:?}"),
    }
}

/// Findings by Excel row: `(code, field key, message)`.
pub fn findings(v: &Validation) -> BTreeMap<u32, Vec<(ErrorCode, String, String)>> {
    let e = &v.errors;
    let rows = e.column("row").unwrap().u32().unwrap();
    let codes = e.column("code").unwrap().str().unwrap();
    let fields = e.column("field").unwrap().str().unwrap();
    let msgs = e.column("message").unwrap().str().unwrap();
    let mut m: BTreeMap<u32, Vec<(ErrorCode, String, String)>> = BTreeMap::new();
    for i in 0..e.height() {
        m.entry(rows.get(i).unwrap()).or_default().push((
            ErrorCode::from_code(codes.get(i).unwrap()).unwrap(),
            fields.get(i).unwrap().to_string(),
            msgs.get(i).unwrap().to_string(),
        ));
    }
    m
}

/// A table-driven case: a name, how to build the row, and exactly the codes it gets.
pub type Case = (&'static str, fn(Person) -> Person, &'static [ErrorCode]);

/// Runs every case as one row of one file and compares each row's codes exactly.
pub fn check(template: TemplateKind, uploader: &str, cases: &[Case]) {
    check_filtered(template, uploader, cases, |_| true)
}

/// Like [`check`], comparing only the codes `keep` selects.
pub fn check_filtered(
    template: TemplateKind,
    uploader: &str,
    cases: &[Case],
    keep: fn(ErrorCode) -> bool,
) {
    run_cases(template, uploader, cases, keep, |_, _| {});
}

/// Findings by Excel row.
pub type Findings = BTreeMap<u32, Vec<(ErrorCode, String, String)>>;

/// Builds one row per case, lets `adjust` edit the rows (cases that involve several
/// rows), validates, asserts each row's codes (those `keep` selects) and returns all
/// findings for further checks.
pub fn run_cases(
    template: TemplateKind,
    uploader: &str,
    cases: &[Case],
    keep: fn(ErrorCode) -> bool,
    adjust: impl FnOnce(&[Person], &mut Vec<BTreeMap<Field, V>>),
) -> Findings {
    let people: Vec<Person> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, build, _))| build(Person::new(i + 1)))
        .collect();
    let mut rows: Vec<_> = people.iter().map(|p| p.cells(template)).collect();
    adjust(&people, &mut rows);
    let bytes = workbook(template, &[], None, &rows, false);
    let v = validate(&bytes, template, uploader);
    let found = findings(&v);
    let mut failures = Vec::new();
    for (i, (name, _, want)) in cases.iter().enumerate() {
        let row = 2 + i as u32;
        let mut got: Vec<ErrorCode> = found
            .get(&row)
            .map(|f| f.iter().map(|x| x.0).filter(|c| keep(*c)).collect())
            .unwrap_or_default();
        got.sort();
        let mut want: Vec<ErrorCode> = want.to_vec();
        want.sort();
        if got != want {
            failures.push(format!(
                "{name}: want {want:?}, got {got:?} ({:?})",
                found.get(&row)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    found
}

pub fn column_str(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// The organisation each workbook of `summary.json` belongs to, by file.
pub fn workbooks(json: &serde_json::Value) -> Vec<(String, String)> {
    json["workbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["file"].as_str().unwrap().to_string(),
                w["organisation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
