//! Reports of SPEC §7: `summary.xlsx`, one error workbook per organisation, the
//! escalation workbook for age failures, and `summary.json` (SPEC §11). Written into a
//! staging folder and moved into place, so a failure leaves no half-written set.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use rust_xlsxwriter::Format;
use schemas::{ErrorCode, Field, Template, TemplateKind};
use serde::Serialize;

use crate::branch_book::BranchBooks;
use crate::columns::col_in;
use crate::columns::col_raw;
use crate::error::PipelineError;
use crate::error::Rejection;
use crate::error_sheet::{
    Finding, Formats, IssueRow, print_setup, report_workbook, write_codes_sheet, write_error_sheet,
};
use crate::read::ROW;
use crate::rules::org::{ORG_NAME, PROVINCE};
use crate::validate::Validation;
use crate::validate::{HAS_ERROR, HAS_WARNING, REPORT_ORG, RowCounts, errors};

pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_XLSX: &str = "summary.xlsx";
pub const ESCALATIONS_XLSX: &str = "escalations.xlsx";

/// `summary.json`, exactly in the shape of SPEC §11.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub template: &'static str,
    pub verdict: &'static str,
    pub file_error: Option<FileError>,
    pub warnings: Vec<String>,
    pub rows: RowCounts,
    pub counts_by_code: BTreeMap<String, usize>,
    pub errors: Vec<FindingJson>,
    /// Each organisation workbook and the organisation it belongs to.
    pub workbooks: Vec<WorkbookJson>,
}

#[derive(Debug, Serialize)]
pub struct WorkbookJson {
    pub file: String,
    pub organisation: String,
}

#[derive(Debug, Serialize)]
pub struct FileError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct FindingJson {
    pub row: u32,
    pub column: String,
    pub code: String,
    pub severity: String,
    pub message: String,
}

impl Summary {
    pub fn rejected(template: TemplateKind, rejection: &Rejection) -> Summary {
        Summary {
            template: template.code(),
            verdict: "rejected",
            file_error: Some(FileError {
                code: rejection.code.code(),
                message: rejection.message.clone(),
            }),
            warnings: Vec::new(),
            rows: RowCounts {
                total: 0,
                valid: 0,
                with_errors: 0,
                with_warnings: 0,
            },
            counts_by_code: BTreeMap::new(),
            errors: Vec::new(),
            workbooks: Vec::new(),
        }
    }

    pub fn accepted(v: &Validation) -> Result<Summary, PipelineError> {
        let e = &v.errors;
        let rows = e.column(errors::ROW)?.u32()?;
        let column = e.column(errors::COLUMN)?.str()?;
        let code = e.column(errors::CODE)?.str()?;
        let severity = e.column(errors::SEVERITY)?.str()?;
        let message = e.column(errors::MESSAGE)?.str()?;
        let findings = (0..e.height())
            .map(|i| FindingJson {
                row: rows.get(i).unwrap_or_default(),
                column: column.get(i).unwrap_or_default().to_string(),
                code: code.get(i).unwrap_or_default().to_string(),
                severity: severity.get(i).unwrap_or_default().to_string(),
                message: message.get(i).unwrap_or_default().to_string(),
            })
            .collect();
        Ok(Summary {
            template: v.template.code(),
            verdict: "accepted",
            file_error: None,
            warnings: v.warnings.clone(),
            rows: v.counts()?,
            counts_by_code: v.counts_by_code()?,
            errors: findings,
            workbooks: Vec::new(),
        })
    }
}

/// The files written, relative to the output folder.
#[derive(Debug, Clone, Default)]
pub struct ReportSet {
    pub files: Vec<String>,
    /// Each organisation workbook's file and the full name of the organisation it
    /// belongs to (who may download it is decided on this, never on a file name).
    pub books: Vec<(String, String)>,
}

/// What a report is, for whom (SPEC §12.2): the uploader's three, or an organisation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Summary,
    SummaryJson,
    Escalations,
    Organisation,
}

impl ReportKind {
    /// The kind of a file of a [`ReportSet`].
    pub fn of(file: &str) -> ReportKind {
        match file {
            SUMMARY_XLSX => ReportKind::Summary,
            SUMMARY_JSON => ReportKind::SummaryJson,
            ESCALATIONS_XLSX => ReportKind::Escalations,
            _ => ReportKind::Organisation,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ReportKind::Summary => "summary",
            ReportKind::SummaryJson => "summary_json",
            ReportKind::Escalations => "escalations",
            ReportKind::Organisation => "organisation",
        }
    }
}

/// Writes the reports of a rejected file: `summary.json` and a one-sheet `summary.xlsx`.
pub fn write_rejected(
    template: TemplateKind,
    rejection: &Rejection,
    out: &Path,
) -> Result<ReportSet, PipelineError> {
    let staging = Staging::new(out)?;
    let summary = Summary::rejected(template, rejection);
    std::fs::write(
        staging.path(SUMMARY_JSON),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    let mut wb = report_workbook();
    let ws = wb.add_worksheet();
    ws.set_name("汇总")?;
    let bold = Format::new().set_bold();
    ws.write_string_with_format(0, 0, "文件未通过检查，未导入任何数据", &bold)?;
    ws.write_string(1, 0, "错误代码")?;
    ws.write_string(1, 1, rejection.code.code())?;
    ws.write_string(2, 0, "错误原因")?;
    ws.write_string(2, 1, &rejection.message)?;
    ws.write_string(3, 0, "修改方法")?;
    ws.write_string(3, 1, rejection.code.hint())?;
    ws.set_column_width(0, 12)?;
    ws.set_column_width(1, 100)?;
    print_setup(ws, true)?;
    wb.save(staging.path(SUMMARY_XLSX))?;
    staging.commit(
        vec![SUMMARY_JSON.into(), SUMMARY_XLSX.into()],
        Vec::new(),
        false,
    )
}

/// Handed each organisation workbook as soon as it is made, with its file name and
/// bytes, on the thread that made it (the job worker starts uploading it then). A
/// workbook handed over is the hook's alone: it is not written into the report folder,
/// though the [`ReportSet`] still lists it.
pub type OnWorkbook = std::sync::Arc<dyn Fn(&str, Vec<u8>) + Send + Sync>;

/// Writes every report of an accepted file.
pub fn write_reports(v: &Validation, out: &Path) -> Result<ReportSet, PipelineError> {
    write_reports_with(v, out, None)
}

/// [`write_reports`], handing each organisation workbook to `on_workbook` as it is made
/// instead of writing it into `out`.
#[tracing::instrument(skip_all, fields(rows = v.rows.height(), findings = v.errors.height()))]
pub fn write_reports_with(
    v: &Validation,
    out: &Path,
    on_workbook: Option<&OnWorkbook>,
) -> Result<ReportSet, PipelineError> {
    let staging = Staging::new(out)?;
    let template = v.template.template();
    let issues = issue_rows(v)?;
    let mut by_org: BTreeMap<&str, Vec<&IssueRow>> = BTreeMap::new();
    for r in &issues {
        by_org.entry(r.report_org.as_str()).or_default().push(r);
    }
    let names = book_names(by_org.keys().copied());
    let mut summary = Summary::accepted(v)?;
    summary.workbooks = names
        .iter()
        .zip(by_org.keys())
        .map(|(file, org)| WorkbookJson {
            file: file.clone(),
            organisation: org.to_string(),
        })
        .collect();
    std::fs::write(
        staging.path(SUMMARY_JSON),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    let mut files = vec![SUMMARY_JSON.to_string()];

    let escalated: Vec<&IssueRow> = issues
        .iter()
        .filter(|r| {
            r.findings
                .iter()
                .any(|f| f.code == ErrorCode::JoinAgeTooYoung)
        })
        .collect();
    // Every workbook is independent: the summary, the escalations and one per
    // organisation are made by the same thread pool, the large ones alongside the many
    // small ones. Organisation workbooks copy a prototype's constant parts. Their files
    // are created one at a time: creation in one folder is serialised by the kernel
    // anyway, and a thread waiting on the lock sleeps here instead of spinning there.
    let books = BranchBooks::new(template)?;
    let create = std::sync::Mutex::new(());
    let (summary_written, (written, escalations_written)) = rayon::join(
        || write_summary_workbook(&staging.path(SUMMARY_XLSX), v, template, &summary, &issues),
        || {
            rayon::join(
                || {
                    by_org
                        .values()
                        .zip(&names)
                        .collect::<Vec<_>>()
                        .into_par_iter()
                        .map(|(rows, name)| {
                            let name = name.clone();
                            let bytes = books.bytes(rows)?;
                            if let Some(take) = on_workbook {
                                take(&name, bytes);
                            } else {
                                let _one_at_a_time =
                                    create.lock().unwrap_or_else(|e| e.into_inner());
                                std::fs::write(staging.path(&name), bytes)?;
                            }
                            Ok(name)
                        })
                        .collect::<Result<Vec<String>, PipelineError>>()
                },
                || {
                    if escalated.is_empty() {
                        return Ok(false);
                    }
                    write_escalations(&staging.path(ESCALATIONS_XLSX), template, &escalated)
                        .map(|()| true)
                },
            )
        },
    );
    summary_written?;
    files.push(SUMMARY_XLSX.into());
    files.extend(written?);
    if escalations_written? {
        files.push(ESCALATIONS_XLSX.into());
    }
    let owners = names
        .into_iter()
        .zip(by_org.keys().map(|o| o.to_string()))
        .collect();
    staging.commit(files, owners, on_workbook.is_some())
}

/// The file names of the organisation workbooks, in the order given: each organisation's
/// [`org_file_name`], unless that file is already taken within the upload, by an
/// earlier organisation or by the uploader's own reports. Names are compared as a
/// case- and normalisation-insensitive file system (Windows, macOS) compares them.
/// A taken name gets a short suffix hashed from the full organisation name, so the
/// same organisations always get the same files.
pub fn book_names<'a>(orgs: impl Iterator<Item = &'a str>) -> Vec<String> {
    let orgs: Vec<&str> = orgs.collect();
    let mut taken: std::collections::HashSet<String> =
        [SUMMARY_XLSX, SUMMARY_JSON, ESCALATIONS_XLSX]
            .iter()
            .map(|f| file_key(f))
            .collect();
    let plain: Vec<String> = orgs.iter().map(|o| org_file_name(o)).collect();
    let mut names: Vec<Option<String>> = vec![None; orgs.len()];
    // First the organisations whose name needed no change: 广州市一中_实验班团支部 keeps
    // its own name even when 广州市一中/实验班团支部 comes first and would make it too.
    for (i, org) in orgs.iter().enumerate() {
        if plain[i].strip_suffix(XLSX) == Some(org) && taken.insert(file_key(&plain[i])) {
            names[i] = Some(plain[i].clone());
        }
    }
    for (i, org) in orgs.iter().enumerate() {
        if names[i].is_some() {
            continue;
        }
        let mut name = plain[i].clone();
        let mut seed = 0_u64;
        while !taken.insert(file_key(&name)) {
            // FNV-1a: stable across runs, platforms and versions.
            let hash = org.bytes().fold(0xcbf2_9ce4_8422_2325_u64 ^ seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            let stem = safe_stem(org, MAX_FILE_BYTES - XLSX.len() - SUFFIX_BYTES);
            name = format!("{stem}~{:08x}{XLSX}", hash as u32);
            seed += 1;
        }
        names[i] = Some(name);
    }
    names.into_iter().flatten().collect()
}

/// How two file names compare on a case- and normalisation-insensitive file system.
fn file_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().flat_map(char::to_lowercase).collect()
}

const XLSX: &str = ".xlsx";
/// The longest file name in bytes that Linux, Windows and macOS all take.
const MAX_FILE_BYTES: usize = 255;
/// `~` and eight hex digits.
const SUFFIX_BYTES: usize = 9;

/// File name of an organisation's workbook: its full name, made safe for Linux, Windows
/// and macOS, at most 255 bytes of UTF-8 with the `.xlsx` kept. Uniqueness within an
/// upload is [`book_names`]'s work.
pub fn org_file_name(full_name: &str) -> String {
    format!(
        "{}{XLSX}",
        safe_stem(full_name, MAX_FILE_BYTES - XLSX.len())
    )
}

/// Characters that no file name may hold anywhere: path separators, the characters
/// Windows reserves, and control characters.
fn replaced(c: char) -> bool {
    matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
}

/// Invisible characters that can disguise a name: bidi controls (which can make
/// `exe.xlsx` read as `xlsx.exe`), zero-width characters and the other format
/// characters (Unicode category Cf), and the byte-order mark. They are dropped.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{890}'..='\u{891}'
            | '\u{8E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Names Windows reserves for devices, whatever follows them after a dot.
fn reserved_on_windows(stem: &str) -> bool {
    let base = stem.split('.').next().unwrap_or("").trim_end_matches(' ');
    let upper = base.to_ascii_uppercase();
    matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((upper.starts_with("COM") || upper.starts_with("LPT"))
        && base.chars().count() == 4
        && base
            .chars()
            .nth(3)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '¹' | '²' | '³')))
}

/// The safe stem of a file name, at most `max_bytes` bytes, cut at a character boundary.
fn safe_stem(full_name: &str, max_bytes: usize) -> String {
    let mut safe: String = full_name
        .chars()
        .filter(|&c| !invisible(c))
        .map(|c| if replaced(c) { '_' } else { c })
        .collect();
    // Windows drops trailing dots and spaces; a leading dot hides a file on Unix.
    let trimmed = safe.trim_matches(|c: char| c == ' ' || c == '.').len();
    if trimmed == 0 {
        safe = "_".into();
    }
    safe = safe.trim_start_matches(' ').to_string();
    if safe.starts_with('.') || reserved_on_windows(&safe) {
        safe.insert(0, '_');
    }
    if safe.len() > max_bytes {
        let mut cut = max_bytes;
        while !safe.is_char_boundary(cut) {
            cut -= 1;
        }
        safe.truncate(cut);
    }
    let end = safe.trim_end_matches([' ', '.']).len();
    safe.truncate(end);
    if safe.is_empty() {
        safe.push('_');
    }
    safe
}

fn issue_rows(v: &Validation) -> Result<Vec<IssueRow>, PipelineError> {
    let template = v.template.template();
    let mut select = vec![col(ROW), col(REPORT_ORG), col(PROVINCE)];
    select.extend(template.columns.iter().map(|c| col(col_raw(c.field))));
    let current_org = if template.has(Field::Branch) {
        col(ORG_NAME).fill_null(col(col_in(Field::Branch)))
    } else {
        lit(v.uploader.clone())
    };
    select.push(current_org.alias("current_org"));
    let df = v
        .rows
        .clone()
        .lazy()
        .filter(col(HAS_ERROR).or(col(HAS_WARNING)))
        .select(select)
        .collect()?;

    let mut findings: HashMap<u32, Vec<Finding>> = HashMap::new();
    let e = &v.errors;
    let (rows, fields, codes, messages) = (
        e.column(errors::ROW)?.u32()?,
        e.column(errors::FIELD)?.str()?,
        e.column(errors::CODE)?.str()?,
        e.column(errors::MESSAGE)?.str()?,
    );
    for i in 0..e.height() {
        let (Some(row), Some(field), Some(code), Some(message)) =
            (rows.get(i), fields.get(i), codes.get(i), messages.get(i))
        else {
            continue;
        };
        let Some(code) = ErrorCode::from_code(code) else {
            continue;
        };
        findings.entry(row).or_default().push(Finding {
            field: field.to_string(),
            code,
            message: message.to_string(),
        });
    }

    let row_col = df.column(ROW)?.u32()?;
    let org_col = df.column(REPORT_ORG)?.str()?;
    let province_col = df.column(PROVINCE)?.str()?;
    let current_col = df.column("current_org")?.str()?;
    let value_cols: Vec<&StringChunked> = template
        .columns
        .iter()
        .map(|c| df.column(&col_raw(c.field)).and_then(|s| s.str()))
        .collect::<PolarsResult<_>>()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let row = row_col.get(i).unwrap_or_default();
        out.push(IssueRow {
            row,
            values: value_cols
                .iter()
                .map(|c| c.get(i).map(|v| crate::bounds::cut_cell(v).to_string()))
                .collect(),
            findings: findings.remove(&row).unwrap_or_default(),
            report_org: org_col.get(i).unwrap_or(&v.uploader).to_string(),
            province: province_col.get(i).map(str::to_string),
            current_org: current_col.get(i).unwrap_or_default().to_string(),
        });
    }
    Ok(out)
}

fn write_summary_workbook(
    path: &Path,
    v: &Validation,
    template: &Template,
    summary: &Summary,
    issues: &[IssueRow],
) -> Result<(), PipelineError> {
    let f = Formats::new();
    let mut wb = report_workbook();
    // 汇总, one table under one header row: the file, its counts, the findings by code.
    // Counts are numbers, in the 数量 column.
    let ws = wb.add_worksheet();
    ws.set_name("汇总")?;
    let counts = summary.rows;
    for (i, h) in ["项目", "说明", "数量"].iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *h, &f.header)?;
    }
    let mut x = 1u32;
    let mut texts = vec![("模板", template.title), ("上传组织", v.uploader.as_str())];
    texts.extend(v.warnings.iter().map(|w| ("文件提示", w.as_str())));
    for (k, val) in texts {
        ws.write_string(x, 0, k)?;
        ws.write_string(x, 1, val)?;
        x += 1;
    }
    for (k, n) in [
        ("总行数", counts.total),
        ("可导入行数", counts.valid),
        ("有错误的行数", counts.with_errors),
        ("有提示的行数", counts.with_warnings),
    ] {
        ws.write_string(x, 0, k)?;
        ws.write_number(x, 2, n as f64)?;
        x += 1;
    }
    for (code, n) in &summary.counts_by_code {
        ws.write_string(x, 0, code)?;
        if let Some(c) = ErrorCode::from_code(code) {
            ws.write_string(x, 1, c.message())?;
        }
        ws.write_number(x, 2, *n as f64)?;
        x += 1;
    }
    ws.set_column_width(0, 26)?;
    ws.set_column_width(1, 60)?;
    ws.set_column_width(2, 10)?;
    ws.set_freeze_panes(1, 0)?;
    print_setup(ws, true)?;

    let rows: Vec<&IssueRow> = issues.iter().collect();
    let detail = wb.add_worksheet();
    detail.set_name("错误明细")?;
    write_error_sheet(detail, template, &rows, &f)?;

    // 按组织: one row per organisation whose admins get a workbook (thousands for a
    // province), with its own header row to repeat on every printed page.
    let mut by_org: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for r in issues {
        let e = by_org.entry(r.report_org.as_str()).or_default();
        let has_error = r
            .findings
            .iter()
            .any(|fd| fd.code.severity() == schemas::Severity::Error);
        if has_error {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2 += r.findings.len();
    }
    let ws = wb.add_worksheet();
    ws.set_name("按组织")?;
    for (i, h) in ["组织全称", "有错误的行数", "仅有提示的行数", "问题总数"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, i as u16, *h, &f.header)?;
    }
    for (k, (org, (e, w, n))) in by_org.iter().enumerate() {
        let x = k as u32 + 1;
        ws.write_string(x, 0, *org)?;
        ws.write_number(x, 1, *e as f64)?;
        ws.write_number(x, 2, *w as f64)?;
        ws.write_number(x, 3, *n as f64)?;
    }
    ws.set_column_width(0, 50)?;
    ws.set_column_range_width(1, 3, 14)?;
    ws.set_freeze_panes(1, 0)?;
    print_setup(ws, false)?;

    write_codes_sheet(&mut wb, &f)?;
    print_setup(wb.worksheet_from_name("说明")?, true)?;
    wb.save(path)?;
    Ok(())
}

/// Rows failing the age rule, per province: 姓名, 身份证号码, 手机号码, current
/// organisation, and the total (SPEC §5.2).
fn write_escalations(
    path: &Path,
    template: &Template,
    rows: &[&IssueRow],
) -> Result<(), PipelineError> {
    let f = Formats::new();
    let idx = |field: Field| template.columns.iter().position(|c| c.field == field);
    let mut by_province: BTreeMap<Option<&str>, Vec<&IssueRow>> = BTreeMap::new();
    for r in rows {
        by_province
            .entry(r.province.as_deref())
            .or_default()
            .push(r);
    }
    let mut wb = report_workbook();
    for (province, rows) in by_province {
        let ws = wb.add_worksheet();
        let name = match province {
            Some(p) => format!(
                "{p} {}",
                schemas::reference::province_name(p).unwrap_or_default()
            ),
            None => "省份未知".to_string(),
        };
        ws.set_name(name.trim())?;
        for (i, h) in ["姓名", "身份证号码", "手机号码", "当前所在团组织全称"]
            .iter()
            .enumerate()
        {
            ws.write_string_with_format(0, i as u16, *h, &f.header)?;
        }
        for (k, r) in rows.iter().enumerate() {
            let x = (k + 1) as u32;
            for (i, field) in [Field::Name, Field::IdNumber, Field::Phone]
                .iter()
                .enumerate()
            {
                let value = idx(*field)
                    .and_then(|p| r.values.get(p).cloned().flatten())
                    .unwrap_or_default();
                ws.write_string(x, i as u16, value)?;
            }
            ws.write_string(x, 3, &r.current_org)?;
        }
        let total_row = (rows.len() + 1) as u32;
        ws.write_string_with_format(total_row, 0, "合计", &f.header)?;
        ws.write_number_with_format(total_row, 1, rows.len() as f64, &f.header)?;
        ws.set_column_width(0, 12)?;
        ws.set_column_width(1, 22)?;
        ws.set_column_width(2, 16)?;
        ws.set_column_width(3, 40)?;
        ws.set_freeze_panes(1, 0)?;
    }
    wb.save(path)?;
    Ok(())
}

/// A folder where reports are written before being moved into place. When the output
/// folder does not exist yet (the usual case: a fresh folder per upload), the staging
/// folder sits beside it and becomes it with one rename; otherwise it sits inside it and
/// each file is renamed in.
struct Staging {
    dir: PathBuf,
    out: PathBuf,
    /// The staging folder is renamed to `out` as a whole.
    whole: bool,
}

impl Staging {
    fn new(out: &Path) -> Result<Staging, PipelineError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let tag = format!("staging-{}-{nanos}", std::process::id());
        let fresh = std::fs::symlink_metadata(out).is_err();
        if let (true, Some(name)) = (fresh, out.file_name()) {
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            std::fs::create_dir_all(parent)?;
            let dir = parent.join(format!(".{}.{tag}", name.to_string_lossy()));
            std::fs::create_dir(&dir)?;
            return Ok(Staging {
                dir,
                out: out.to_path_buf(),
                whole: true,
            });
        }
        std::fs::create_dir_all(out)?;
        let dir = out.join(format!(".{tag}"));
        std::fs::create_dir_all(&dir)?;
        Ok(Staging {
            dir,
            out: out.to_path_buf(),
            whole: false,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Moves the staged `files` into place; when `books_taken`, the organisation
    /// workbooks among them went to a hook and were never staged.
    fn commit(
        self,
        files: Vec<String>,
        books: Vec<(String, String)>,
        books_taken: bool,
    ) -> Result<ReportSet, PipelineError> {
        // Someone may have made the output folder meanwhile: then file by file.
        if !(self.whole && std::fs::rename(&self.dir, &self.out).is_ok()) {
            std::fs::create_dir_all(&self.out)?;
            let taken: std::collections::HashSet<&str> = if books_taken {
                books.iter().map(|(file, _)| file.as_str()).collect()
            } else {
                Default::default()
            };
            for f in files.iter().filter(|f| !taken.contains(f.as_str())) {
                std::fs::rename(self.dir.join(f), self.out.join(f))?;
            }
            std::fs::remove_dir_all(&self.dir)?;
        }
        Ok(ReportSet { files, books })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // After a failed write: leave nothing behind.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
