//! Synthetic rosters for demos, tests and benchmarks: a realistic organisation tree and
//! people with valid ID numbers, mostly valid, with a known share of every kind of
//! mistake. Every injected mistake is recorded, so a test can demand that validation
//! finds exactly those and nothing else.

use chrono::{Datelike, Months, NaiveDate};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};
use schemas::{ErrorCode, Field, TemplateKind, reference};

use crate::rules::identity::id_check_char;

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub rows: usize,
    pub template: TemplateKind,
    /// Share of rows carrying one injected mistake (0.0–1.0).
    pub error_rate: f64,
    pub seed: u64,
    /// The upload date the ages are planned against.
    pub as_of: NaiveDate,
}

/// A generated roster.
pub struct Sample {
    /// The org file (CSV, SPEC §2).
    pub orgs_csv: String,
    /// Full name of the uploading organisation.
    pub uploader: String,
    /// `(excel row, code)` of every finding the roster must produce.
    pub expected: Vec<(u32, ErrorCode)>,
    pub rows: usize,
}

/// Kinds of mistake, each with the one code it must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mistake {
    RequiredMissing,
    NameInvalid,
    IdAsNumber,
    IdFormat,
    IdLegacy,
    IdBirthdate,
    IdRegion,
    IdChecksum,
    JoinTooYoung,
    JoinedInFuture,
    DateInvalid,
    DevMissing,
    DevFormat,
    DevSegment,
    DevYear,
    DevTaken,
    IdDuplicate,
    OrgNotFound,
    OrgNotBranch,
    OrgOutOfScope,
    OrgParentheses,
    PhoneInvalid,
    EmailInvalid,
    EnumInvalid,
    DutyMissing,
    TextTooLong,
    OverAge,
    ControlCharacter,
}

impl Mistake {
    pub const ALL: [Mistake; 28] = [
        Mistake::RequiredMissing,
        Mistake::NameInvalid,
        Mistake::IdAsNumber,
        Mistake::IdFormat,
        Mistake::IdLegacy,
        Mistake::IdBirthdate,
        Mistake::IdRegion,
        Mistake::IdChecksum,
        Mistake::JoinTooYoung,
        Mistake::JoinedInFuture,
        Mistake::DateInvalid,
        Mistake::DevMissing,
        Mistake::DevFormat,
        Mistake::DevSegment,
        Mistake::DevYear,
        Mistake::DevTaken,
        Mistake::IdDuplicate,
        Mistake::OrgNotFound,
        Mistake::OrgNotBranch,
        Mistake::OrgOutOfScope,
        Mistake::OrgParentheses,
        Mistake::PhoneInvalid,
        Mistake::EmailInvalid,
        Mistake::EnumInvalid,
        Mistake::DutyMissing,
        Mistake::TextTooLong,
        Mistake::OverAge,
        Mistake::ControlCharacter,
    ];

    pub fn code(self) -> ErrorCode {
        use ErrorCode as E;
        match self {
            Mistake::RequiredMissing => E::RequiredMissing,
            Mistake::NameInvalid => E::NameInvalid,
            Mistake::IdAsNumber => E::IdNumberAsNumber,
            Mistake::IdFormat => E::IdNumberFormat,
            Mistake::IdLegacy => E::IdNumberLegacy,
            Mistake::IdBirthdate => E::IdNumberBirthdate,
            Mistake::IdRegion => E::IdNumberRegion,
            Mistake::IdChecksum => E::IdNumberChecksum,
            Mistake::JoinTooYoung => E::JoinAgeTooYoung,
            Mistake::JoinedInFuture => E::JoinedOnInvalid,
            Mistake::DateInvalid => E::DateInvalid,
            Mistake::DevMissing => E::DevNumberMissing,
            Mistake::DevFormat => E::DevNumberFormat,
            Mistake::DevSegment => E::DevNumberSegment,
            Mistake::DevYear => E::DevNumberYearMismatch,
            Mistake::DevTaken => E::DevNumberTaken,
            Mistake::IdDuplicate => E::IdDuplicateInFile,
            Mistake::OrgNotFound => E::OrgNotFound,
            Mistake::OrgNotBranch => E::OrgNotBranch,
            Mistake::OrgOutOfScope => E::OrgOutOfScope,
            Mistake::OrgParentheses => E::OrgNameParentheses,
            Mistake::PhoneInvalid => E::PhoneInvalid,
            Mistake::EmailInvalid => E::EmailInvalid,
            Mistake::EnumInvalid => E::EnumInvalid,
            Mistake::DutyMissing => E::DutyMissing,
            Mistake::TextTooLong => E::TextTooLong,
            Mistake::OverAge => E::OverAge,
            Mistake::ControlCharacter => E::ControlCharacter,
        }
    }

    fn applies_to(self, t: TemplateKind) -> bool {
        match t {
            TemplateKind::Members => true,
            TemplateKind::Cadres => !matches!(
                self,
                Mistake::OrgNotFound
                    | Mistake::OrgNotBranch
                    | Mistake::OrgOutOfScope
                    | Mistake::OrgParentheses
                    | Mistake::DutyMissing
                    | Mistake::TextTooLong
                    | Mistake::EmailInvalid
                    | Mistake::OverAge
            ),
        }
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "邓", "冯", "韩", "曹", "欧阳",
    "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "文", "晨", "宇", "欣", "怡", "浩", "然", "子",
    "轩", "涵",
];
const ETHNIC: &[&str] = &[
    "汉族", "汉族", "汉族", "汉族", "汉族", "汉族", "壮族", "回族", "满族", "苗族", "汉",
];
const EDUCATION: &[&str] = &[
    "普通高中在读",
    "大学本科在读",
    "大学本科",
    "大学专科",
    "初中在读",
    "硕士",
    "中等职业教育",
    "本科",
];
const OCCUPATION: &[&str] = &[
    "学生",
    "学生",
    "学生",
    "非公企业职工",
    "国有企业职工",
    "教师",
    "机关事业单位职工",
    "自由职业者",
];
const DUTY_A: &[&str] = &["书记", "副书记", "组织委员", "宣传委员", "文体委员"];
const DUTY_B: &[&str] = &["书记", "副书记", "常委", "委员", "候补委员", "工作人员"];
const GRADES: &[&str] = &["初一", "初二", "初三", "高一", "高二", "高三"];

/// Cell values of one generated row.
#[derive(Debug, Clone)]
enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

struct Person {
    birth: NaiveDate,
    region: String,
    seq: u32,
    joined: NaiveDate,
    dev: Option<String>,
}

fn id18(region: &str, birth: NaiveDate, seq: u32) -> String {
    let first17 = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
    format!("{first17}{}", id_check_char(&first17))
}

struct Tree {
    csv: String,
    uploader: String,
    branches: Vec<String>,
    committees: Vec<String>,
    out_of_scope_branch: String,
    parens_branch: String,
    province: &'static str,
    counties: Vec<&'static str>,
}

/// The organisation tree: 团中央 → 广东 (the uploader) → cities → counties → school
/// committees → class branches; plus 北京 and 新疆 subtrees for scope and Xinjiang rules.
fn build_tree(branches_needed: usize) -> Tree {
    let mut csv =
        String::from("组织全称,组织简称,组织类别,上级组织全称,行业类别,省份代码,学校机构编号\n");
    let mut line =
        |full: &str, short: &str, cat: &str, parent: &str, province: &str, school: &str| {
            csv.push_str(&format!(
                "{full},{short},{cat},{parent},,{province},{school}\n"
            ));
        };
    line("共青团中央", "团中央", "团的领导机关", "", "", "");
    let province = "44";
    let uploader = "共青团广东省委员会".to_string();
    line(
        &uploader,
        "广东团省委",
        "团的领导机关",
        "共青团中央",
        province,
        "",
    );
    let current = |prefix: &str| -> Vec<(&'static str, &'static str)> {
        reference::REGION_CODES_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut it = l.split(',');
                let (code, name, _start, end) = (it.next()?, it.next()?, it.next()?, it.next()?);
                (code.starts_with(prefix) && end.is_empty()).then_some((code, name))
            })
            .collect()
    };
    let regions = current(province);
    let cities: Vec<_> = regions
        .iter()
        .filter(|(c, _)| c.ends_with("00") && !c.ends_with("0000"))
        .collect();
    let mut counties: Vec<(&str, String)> = Vec::new();
    for (code, name) in &cities {
        let city_org = format!("共青团{name}委员会");
        line(&city_org, name, "团的领导机关", &uploader, "", "");
        for (cc, cn) in regions
            .iter()
            .filter(|(c, cn)| c[..4] == code[..4] && !c.ends_with("00") && *cn != "市辖区")
        {
            let county_org = format!("共青团{name}{cn}委员会");
            line(&county_org, cn, "团的领导机关", &city_org, "", "");
            counties.push((cc, county_org));
        }
    }
    let per_committee = 18;
    let committees_needed = branches_needed.div_ceil(per_committee).max(2);
    let mut branches = Vec::with_capacity(branches_needed);
    let mut committees = Vec::new();
    let mut school_no = 0u64;
    for k in 0..committees_needed {
        let (_, county_org) = &counties[k % counties.len()];
        let county = county_org
            .trim_start_matches("共青团")
            .trim_end_matches("委员会");
        school_no += 1;
        let school = format!("{county}第{}中学", k / counties.len() + 1);
        let committee = format!("{school}团委");
        line(
            &committee,
            &school,
            "团委",
            county_org,
            "",
            &format!("{:010}", 4400000000 + school_no),
        );
        for b in 0..per_committee {
            if branches.len() >= branches_needed {
                break;
            }
            let branch = format!(
                "{school}{}{}班团支部",
                GRADES[b % GRADES.len()],
                b / GRADES.len() + 1
            );
            line(
                &branch,
                &format!("{}{}班", GRADES[b % GRADES.len()], b / GRADES.len() + 1),
                "团支部",
                &committee,
                "",
                "",
            );
            branches.push(branch);
        }
        committees.push(committee);
    }
    let parens_branch = format!("{}（实验班）团支部", committees[0].trim_end_matches("团委"));
    line(&parens_branch, "实验班", "团支部", &committees[0], "", "");
    // Another province: out of the uploader's scope.
    line(
        "共青团北京市委员会",
        "北京团市委",
        "团的领导机关",
        "共青团中央",
        "11",
        "",
    );
    line(
        "北京市第一中学团委",
        "北京一中",
        "团委",
        "共青团北京市委员会",
        "",
        "",
    );
    let out_of_scope_branch = "北京市第一中学高一1班团支部".to_string();
    line(
        &out_of_scope_branch,
        "高一1班",
        "团支部",
        "北京市第一中学团委",
        "",
        "",
    );
    // 新疆 and 兵团, for the Xinjiang rules.
    line(
        "共青团新疆维吾尔自治区委员会",
        "新疆团区委",
        "团的领导机关",
        "共青团中央",
        "65",
        "",
    );
    line(
        "乌鲁木齐市第一中学团委",
        "乌市一中",
        "团委",
        "共青团新疆维吾尔自治区委员会",
        "",
        "",
    );
    line(
        "乌鲁木齐市第一中学高一1班团支部",
        "高一1班",
        "团支部",
        "乌鲁木齐市第一中学团委",
        "",
        "",
    );
    line(
        "共青团新疆生产建设兵团委员会",
        "兵团团委",
        "团的领导机关",
        "共青团中央",
        "66",
        "",
    );
    line(
        "石河子第一中学团委",
        "石河子一中",
        "团委",
        "共青团新疆生产建设兵团委员会",
        "",
        "",
    );
    line(
        "石河子第一中学高一1班团支部",
        "高一1班",
        "团支部",
        "石河子第一中学团委",
        "",
        "",
    );
    let county_codes: Vec<&'static str> = regions
        .iter()
        .filter(|(c, _)| !c.ends_with("00"))
        .map(|(c, _)| *c)
        .collect();
    Tree {
        csv,
        uploader,
        branches,
        committees,
        out_of_scope_branch,
        parens_branch,
        province,
        counties: county_codes,
    }
}

fn add_years(d: NaiveDate, years: i32) -> NaiveDate {
    d.checked_add_months(Months::new(12 * years as u32))
        .unwrap_or(d)
}

fn sub_years(d: NaiveDate, years: i32) -> NaiveDate {
    d.checked_sub_months(Months::new(12 * years as u32))
        .unwrap_or(d)
}

struct Gen<'t> {
    rng: fastrand::Rng,
    tree: &'t Tree,
    as_of: NaiveDate,
    /// Next sequence number per year and province: numbers never repeat by chance.
    dev_seq: std::collections::HashMap<(i32, String), u32>,
    /// IDs handed out: people never collide by chance.
    ids: std::collections::HashSet<String>,
    /// First sequence number of development numbers, from the seed.
    dev_start: u32,
}

impl Gen<'_> {
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.usize(..items.len())]
    }

    fn name(&mut self) -> String {
        let mut n = self.pick(SURNAMES).to_string();
        for _ in 0..self.rng.usize(1..=2) {
            n.push_str(self.pick(GIVEN));
        }
        n
    }

    fn dev(&mut self, year: i32, province: &str) -> String {
        // Each seed numbers from its own block, so samples can be loaded together.
        let start = self.dev_start;
        let seq = self
            .dev_seq
            .entry((year, province.to_string()))
            .or_insert(start);
        *seq += 1;
        format!("{year}{province}{:06}", *seq)
    }

    /// A sequence number giving a new, unused ID for this region and birth date.
    fn fresh_seq(&mut self, region: &str, birth: NaiveDate) -> u32 {
        loop {
            let seq = self.rng.u32(1..1000);
            if self.ids.insert(id18(region, birth, seq)) {
                return seq;
            }
        }
    }

    /// A person aged `age` on the upload date who joined at 14–17.
    fn person(&mut self, age: i32) -> Person {
        let birth = sub_years(self.as_of, age)
            .checked_sub_days(chrono::Days::new(self.rng.u64(1..360)))
            .expect("date in range");
        let join_age = self.rng.i32(14..=17).min(age - 1);
        let joined = add_years(birth, join_age)
            .checked_add_days(chrono::Days::new(self.rng.u64(0..200)))
            .expect("date in range")
            .min(self.as_of);
        let region = self.tree.counties[self.rng.usize(..self.tree.counties.len())].to_string();
        let seq = self.fresh_seq(&region, birth);
        let dev = (joined.year() >= 2016 || self.ids.len() == 1 || self.rng.bool())
            .then(|| self.dev(joined.year(), self.tree.province));
        Person {
            birth,
            region,
            seq,
            joined,
            dev,
        }
    }

    /// 入团年月 in one of the formats admins type, or an Excel date cell.
    fn join_cell(&mut self, d: NaiveDate) -> Cell {
        match self.rng.u8(0..10) {
            0 => Cell::Date(d),
            1 => Cell::Text(format!("{}年{}月", d.year(), d.month())),
            2 => Cell::Text(format!("{}.{:02}", d.year(), d.month())),
            3 => Cell::Text(format!("{}{:02}", d.year(), d.month())),
            4 => Cell::Text(d.format("%Y/%-m/%-d").to_string()),
            _ => Cell::Text(format!("{}-{:02}", d.year(), d.month())),
        }
    }
}

/// Rows of an Excel sheet.
pub const EXCEL_ROWS: usize = schemas::excel::MAX_ROWS as usize;

/// Generates a roster into `xlsx_path` and returns the org file and what it must produce.
/// At most 1,048,575 rows (one sheet, below its header).
pub fn generate(opts: &SampleOptions, xlsx_path: &std::path::Path) -> Result<Sample, XlsxError> {
    // At least 20 branches: small samples share one org tree (and one org file).
    let tree = build_tree(opts.rows.div_ceil(17).max(20));
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(opts.seed),
        tree: &tree,
        as_of: opts.as_of,
        dev_seq: Default::default(),
        ids: Default::default(),
        dev_start: (opts.seed % 900) as u32 * 1000,
    };
    let template = opts.template.template();
    let kinds: Vec<Mistake> = Mistake::ALL
        .into_iter()
        .filter(|m| m.applies_to(opts.template))
        .collect();
    // Which rows carry a mistake: spread over the file, never the first row (copies
    // need an earlier clean row), every kind in turn.
    let n_mistakes = ((opts.rows as f64) * opts.error_rate).round() as usize;
    let mut mistake_at: Vec<Option<Mistake>> = vec![None; opts.rows];
    if n_mistakes > 0 && opts.rows > 1 {
        let step = ((opts.rows - 1) as f64 / n_mistakes as f64).max(1.0);
        for k in 0..n_mistakes.min(opts.rows - 1) {
            let i = 1 + ((k as f64) * step) as usize;
            mistake_at[i.min(opts.rows - 1)] = Some(kinds[k % kinds.len()]);
        }
    }

    let mut wb = Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory()?;
    ws.set_name(template.title)?;
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    // Two title rows above the header, as the registry's template has, when the sheet
    // has room: a sheet holds 1,048,576 rows in all.
    let title_rows = (EXCEL_ROWS - 1).saturating_sub(opts.rows).min(2) as u32;
    let titles = [
        template.title,
        "说明：带*的列为必填项；身份证号码请设置为文本格式",
    ];
    for (i, t) in titles.iter().take(title_rows as usize).enumerate() {
        ws.write_string(i as u32, 0, *t)?;
    }
    for (i, c) in template.columns.iter().enumerate() {
        let star = if c.requirement == schemas::Requirement::Required {
            "*"
        } else {
            ""
        };
        ws.write_string(title_rows, i as u16, format!("{star}{}", c.field.header()))?;
    }
    let pos = |f: Field| template.columns.iter().position(|c| c.field == f);
    let mut expected = Vec::new();
    // Earlier clean rows: (excel row, id, name, dev, joined) to copy from.
    let mut clean: Vec<(u32, String, String, Option<String>, NaiveDate)> = Vec::new();

    for (i, &mistake) in mistake_at.iter().enumerate() {
        let excel_row = title_rows + 2 + i as u32;
        let members = opts.template == TemplateKind::Members;
        let age = match mistake {
            Some(Mistake::OverAge) => 30,
            _ if members => g.rng.i32(15..=26),
            _ => g.rng.i32(20..=27),
        };
        let mut p = g.person(age);
        let mut cells: Vec<Cell> = vec![Cell::Empty; template.columns.len()];
        let mut set = |f: Field, v: Cell| {
            if let Some(k) = pos(f) {
                cells[k] = v;
            }
        };
        let name = g.name();
        let mut branch = tree.branches[i % tree.branches.len()].clone();
        let mut province = tree.province.to_string();
        match mistake {
            Some(Mistake::JoinTooYoung) => {
                p.joined = add_years(p.birth, 11);
                p.dev = Some(g.dev(p.joined.year(), &province));
            }
            Some(Mistake::JoinedInFuture) => {
                p.joined = opts.as_of.checked_add_months(Months::new(3)).expect("date");
                p.dev = Some(g.dev(p.joined.year(), &province));
            }
            Some(Mistake::OrgOutOfScope) => {
                branch = tree.out_of_scope_branch.clone();
                province = "11".into();
                p.dev = Some(g.dev(p.joined.year(), &province));
            }
            Some(Mistake::DevMissing) => {
                if p.joined.year() < 2017 {
                    p.joined = NaiveDate::from_ymd_opt(2017, 3, 1)
                        .expect("date")
                        .max(add_years(p.birth, 14));
                }
                p.dev = None;
            }
            _ => {}
        }
        let mut id = id18(&p.region, p.birth, p.seq);
        let mut name = name;
        let mut id_cell = None;
        match mistake {
            Some(Mistake::IdDuplicate) | Some(Mistake::DevTaken) if !clean.is_empty() => {
                let (row, cid, cname, cdev, cjoined) = clean[clean.len() - 1].clone();
                if mistake == Some(Mistake::IdDuplicate) {
                    p.joined = cjoined;
                    p.dev = cdev;
                    id = cid;
                    name = cname;
                    expected.push((row, ErrorCode::IdDuplicateInFile));
                    clean.pop();
                } else {
                    // Another person takes the number of an earlier clean row: one that
                    // joined when this person was old enough, so only the number is wrong.
                    let old_enough = add_years(p.birth, 14);
                    if let Some((_, _, _, d, j)) = clean
                        .iter()
                        .rev()
                        .find(|c| c.3.is_some() && c.4 >= old_enough)
                        .cloned()
                    {
                        p.dev = d;
                        p.joined = j;
                    } else {
                        // Nobody suitable: make this person older, with a new ID.
                        let (_, _, _, d, j) = clean
                            .iter()
                            .rev()
                            .find(|c| c.3.is_some())
                            .cloned()
                            .expect("the first row has a number");
                        p.birth = sub_years(j, 15);
                        p.seq = g.fresh_seq(&p.region, p.birth);
                        id = id18(&p.region, p.birth, p.seq);
                        p.dev = d;
                        p.joined = j;
                    }
                }
            }
            Some(Mistake::IdAsNumber) => {
                // What Excel keeps of the number typed in (an X cannot be typed as one).
                let digits = id.replace('X', "0");
                id_cell = Some(Cell::Number(digits.parse::<f64>().expect("18 digits")))
            }
            Some(Mistake::IdFormat) => id.truncate(17),
            Some(Mistake::IdLegacy) => {
                let b = p.birth.format("%y%m%d").to_string();
                id = format!("{}{b}{:03}", p.region, p.seq);
            }
            Some(Mistake::IdBirthdate) => id.replace_range(10..12, "13"),
            Some(Mistake::IdRegion) => {
                let first17 = format!("999999{}", &id[6..17]);
                id = format!("{first17}{}", id_check_char(&first17));
            }
            Some(Mistake::IdChecksum) => {
                let good = id.pop().expect("18 chars");
                id.push(if good == '1' { '2' } else { '1' });
            }
            _ => {}
        }
        set(Field::Name, Cell::Text(name.clone()));
        set(
            Field::IdNumber,
            id_cell.unwrap_or_else(|| Cell::Text(id.clone())),
        );
        set(Field::Ethnicity, Cell::Text(g.pick(ETHNIC).into()));
        set(
            Field::PoliticalStatus,
            Cell::Text(
                if age >= 22 && g.rng.u8(0..5) == 0 {
                    "中共党员"
                } else {
                    "共青团员"
                }
                .into(),
            ),
        );
        let join_cell = g.join_cell(p.joined);
        set(Field::JoinedOn, join_cell);
        if let Some(d) = &p.dev {
            set(Field::DevNumber, Cell::Text(d.clone()));
        }
        set(Field::Education, Cell::Text(g.pick(EDUCATION).into()));
        set(Field::Occupation, Cell::Text(g.pick(OCCUPATION).into()));
        let phone = format!("1{}{:09}", g.rng.u8(3..=9), g.rng.u32(0..1_000_000_000));
        set(Field::Phone, Cell::Text(phone));
        set(Field::Branch, Cell::Text(branch));
        let cadre = members && g.rng.u8(0..20) == 0 && mistake != Some(Mistake::OverAge);
        if members {
            set(
                Field::IsCadre,
                Cell::Text(if cadre { "是" } else { "否" }.into()),
            );
            if cadre {
                set(Field::Duty, Cell::Text(g.pick(DUTY_A).into()));
            }
            if g.rng.bool() {
                set(
                    Field::Workplace,
                    Cell::Text(
                        tree.committees[i % tree.committees.len()]
                            .trim_end_matches("团委")
                            .to_string(),
                    ),
                );
            }
            if g.rng.u8(0..4) == 0 {
                set(Field::Email, Cell::Text(format!("user{i}@example.com")));
            }
        } else {
            set(Field::Duty, Cell::Text(g.pick(DUTY_B).into()));
            let appointed = p.joined.max(sub_years(opts.as_of, 2));
            set(
                Field::AppointedOn,
                Cell::Text(format!("{}-{:02}", appointed.year(), appointed.month())),
            );
            set(
                Field::CadreNature,
                Cell::Text(["专职", "兼职", "挂职"][g.rng.usize(..3)].into()),
            );
            set(
                Field::PartyCommitteeMember,
                Cell::Text(if g.rng.bool() { "是" } else { "否" }.into()),
            );
        }
        match mistake {
            Some(Mistake::RequiredMissing) => set(Field::Ethnicity, Cell::Empty),
            Some(Mistake::NameInvalid) => {
                set(Field::Name, Cell::Text(format!("{}3", g.pick(SURNAMES))))
            }
            // NUL: Excel stores it escaped as `_x0000_`.
            Some(Mistake::ControlCharacter) => set(
                Field::Name,
                Cell::Text(format!("{}\0{}", g.pick(SURNAMES), "明")),
            ),
            Some(Mistake::DateInvalid) => set(
                Field::JoinedOn,
                Cell::Text(format!("{}-13", p.joined.year())),
            ),
            Some(Mistake::DevFormat) => set(
                Field::DevNumber,
                Cell::Text(format!(
                    "{}A{}",
                    p.joined.year(),
                    &g.dev(p.joined.year(), &province)[5..]
                )),
            ),
            Some(Mistake::DevSegment) => set(
                Field::DevNumber,
                Cell::Text(format!("{}99{:06}", p.joined.year(), g.rng.u32(0..999_999))),
            ),
            Some(Mistake::DevYear) => {
                let wrong = if (2016..=2019).contains(&p.joined.year()) {
                    2014
                } else {
                    p.joined.year() - 3
                };
                set(Field::DevNumber, Cell::Text(g.dev(wrong, &province)));
            }
            Some(Mistake::OrgNotFound) => {
                set(Field::Branch, Cell::Text("不存在的某某团支部".into()))
            }
            Some(Mistake::OrgNotBranch) => {
                set(Field::Branch, Cell::Text(tree.committees[0].clone()))
            }
            Some(Mistake::OrgParentheses) => {
                set(Field::Branch, Cell::Text(tree.parens_branch.clone()))
            }
            Some(Mistake::PhoneInvalid) => set(Field::Phone, Cell::Text("1234567".into())),
            Some(Mistake::EmailInvalid) => set(Field::Email, Cell::Text("someone@".into())),
            Some(Mistake::EnumInvalid) => set(Field::PoliticalStatus, Cell::Text("群众".into())),
            Some(Mistake::DutyMissing) => {
                set(Field::IsCadre, Cell::Text("是".into()));
                set(Field::Duty, Cell::Empty);
            }
            Some(Mistake::TextTooLong) => {
                set(Field::Workplace, Cell::Text("很长的单位名称".repeat(16)))
            }
            _ => {}
        }
        for (k, c) in cells.iter().enumerate() {
            match c {
                Cell::Empty => {}
                Cell::Text(s) => {
                    ws.write_string(excel_row - 1, k as u16, s)?;
                }
                Cell::Number(n) => {
                    ws.write_number(excel_row - 1, k as u16, *n)?;
                }
                Cell::Date(d) => {
                    let dt =
                        ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)?;
                    ws.write_date_with_format(excel_row - 1, k as u16, &dt, &date_format)?;
                }
            }
        }
        match mistake {
            Some(m) => expected.push((excel_row, m.code())),
            None => clean.push((excel_row, id, name, p.dev.clone(), p.joined)),
        }
    }
    wb.save(xlsx_path)?;
    expected.sort();
    Ok(Sample {
        orgs_csv: tree.csv,
        uploader: tree.uploader,
        expected,
        rows: opts.rows,
    })
}
