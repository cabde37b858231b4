//! The error sheet every workbook of an upload shares: the uploaded values in template
//! order with 行号, 错误代码 and 错误原因, offending cells filled and noted, the 说明 sheet,
//! the formats and widths. The summary workbook (`report`) and the branch workbooks
//! (`branch_book`) both write through it, and neither imports the other's.

use rust_xlsxwriter::{Color, Format, FormatBorder, Note, Workbook, Worksheet};
use schemas::{ErrorCode, Field, Template};

use crate::error::PipelineError;

/// Note geometry, as [`write_error_sheet`] sets it (pixels); `branch_book` writes the
/// same notes by hand.
pub(crate) const NOTE_WIDTH: u32 = 320;
pub(crate) const NOTE_HEIGHT: u32 = 120;
pub(crate) const NOTE_AUTHOR: &str = "roster";

/// The note every flagged cell carries.
pub(crate) fn note(text: impl Into<String>) -> Note {
    Note::new(text)
        .set_author(NOTE_AUTHOR)
        .set_width(NOTE_WIDTH)
        .set_height(NOTE_HEIGHT)
}

/// One finding as the workbooks need it.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub(crate) field: String,
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

/// A row with findings: its uploaded values in template order.
#[derive(Debug)]
pub(crate) struct IssueRow {
    pub(crate) row: u32,
    pub(crate) values: Vec<Option<String>>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) report_org: String,
    /// For escalations.
    pub(crate) province: Option<String>,
    pub(crate) current_org: String,
}

/// A workbook for reports. Fast deflate: most of a branch workbook is the same styles,
/// theme and 说明 sheet every time, and at the default level compressing them was most
/// of the reports' time (18,645 workbooks for a 1M-row file); files grow a few percent.
pub(crate) fn report_workbook() -> Workbook {
    let mut wb = Workbook::new();
    wb.set_zip_compression_level(1);
    wb
}

pub(crate) struct Formats {
    pub(crate) header: Format,
    pub(crate) error: Format,
    pub(crate) warning: Format,
    pub(crate) wrap: Format,
}

impl Formats {
    pub(crate) fn new() -> Formats {
        Formats {
            header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xD9E1F2))
                .set_border(FormatBorder::Thin),
            error: Format::new().set_background_color(Color::RGB(0xFF9999)),
            warning: Format::new().set_background_color(Color::RGB(0xFFEB9C)),
            wrap: Format::new().set_text_wrap(),
        }
    }
}

/// Widths of 行号, 错误代码, 错误原因.
pub(crate) const REPORT_WIDTHS: [f64; 3] = [8.0, 24.0, 60.0];

/// Column widths, frozen header, filter over `last_row` rows and print set-up of an
/// error sheet.
pub(crate) fn setup_error_sheet(
    ws: &mut Worksheet,
    template: &Template,
    last_row: u32,
) -> Result<(), PipelineError> {
    let n = template.columns.len() as u16;
    for (i, c) in template.columns.iter().enumerate() {
        ws.set_column_width(i as u16, column_width(c.field))?;
    }
    for (j, w) in REPORT_WIDTHS.iter().enumerate() {
        ws.set_column_width(n + j as u16, *w)?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, last_row, n + 2)?;
    print_setup(ws, true)?;
    Ok(())
}

/// Printed, a sheet fits the page width (landscape when it is wide) and repeats its
/// header row, the first, on every page.
pub(crate) fn print_setup(ws: &mut Worksheet, landscape: bool) -> Result<(), PipelineError> {
    if landscape {
        ws.set_landscape();
    }
    ws.set_print_fit_to_pages(1, 0);
    ws.set_repeat_rows(0, 0)?;
    Ok(())
}

/// 错误原因 of a row: each finding as 【header】message, joined by ；.
pub(crate) fn reasons(template: &Template, findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|fd| {
            let header = template
                .columns
                .iter()
                .find(|c| c.field.key() == fd.field)
                .map(|c| c.field.header())
                .unwrap_or("");
            format!("【{header}】{}", fd.message)
        })
        .collect::<Vec<_>>()
        .join("；")
}

/// The error sheet: template columns as uploaded, then 行号, 错误代码, 错误原因; the cells
/// concerned filled red (warnings yellow) with the message as a note.
pub(crate) fn write_error_sheet(
    ws: &mut Worksheet,
    template: &Template,
    rows: &[&IssueRow],
    f: &Formats,
) -> Result<(), PipelineError> {
    setup_error_sheet(ws, template, rows.len() as u32)?;
    let n = template.columns.len() as u16;
    for (i, c) in template.columns.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, c.field.header(), &f.header)?;
    }
    for (j, h) in schemas::template::REPORT_COLUMNS.iter().enumerate() {
        ws.write_string_with_format(0, n + j as u16, *h, &f.header)?;
    }
    for (k, r) in rows.iter().enumerate() {
        let x = (k + 1) as u32;
        for (i, c) in template.columns.iter().enumerate() {
            let here: Vec<&Finding> = r
                .findings
                .iter()
                .filter(|fd| fd.field == c.field.key())
                .collect();
            let value = r.values[i].as_deref().unwrap_or("");
            if here.is_empty() {
                if !value.is_empty() {
                    ws.write_string(x, i as u16, value)?;
                }
                continue;
            }
            let is_error = here
                .iter()
                .any(|fd| fd.code.severity() == schemas::Severity::Error);
            let fmt = if is_error { &f.error } else { &f.warning };
            ws.write_string_with_format(x, i as u16, value, fmt)?;
            let text = here
                .iter()
                .map(|fd| fd.message.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            ws.insert_note(x, i as u16, &note(text))?;
        }
        ws.write_number(x, n, r.row as f64)?;
        let mut codes: Vec<&str> = r.findings.iter().map(|fd| fd.code.code()).collect();
        codes.dedup();
        ws.write_string(x, n + 1, codes.join(";"))?;
        ws.write_string_with_format(x, n + 2, reasons(template, &r.findings), &f.wrap)?;
    }
    Ok(())
}

pub(crate) fn column_width(f: Field) -> f64 {
    match f {
        Field::IdNumber => 22.0,
        Field::Branch | Field::Workplace => 36.0,
        Field::Email => 26.0,
        Field::DevNumber | Field::Phone => 16.0,
        _ => 12.0,
    }
}

/// The 说明 sheet: every code, its meaning and how to fix it.
pub(crate) fn write_codes_sheet(wb: &mut Workbook, f: &Formats) -> Result<(), PipelineError> {
    let ws = wb.add_worksheet();
    ws.set_name("说明")?;
    for (i, h) in ["错误代码", "级别", "错误说明", "修改方法"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, i as u16, *h, &f.header)?;
    }
    for (k, c) in ErrorCode::ALL.iter().enumerate() {
        let x = (k + 1) as u32;
        ws.write_string(x, 0, c.code())?;
        ws.write_string(x, 1, c.severity().chinese())?;
        ws.write_string_with_format(x, 2, c.message(), &f.wrap)?;
        ws.write_string_with_format(x, 3, c.hint(), &f.wrap)?;
    }
    ws.set_column_width(0, 26)?;
    ws.set_column_width(1, 6)?;
    ws.set_column_width(2, 60)?;
    ws.set_column_width(3, 50)?;
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// An organisation's error workbook written by rust_xlsxwriter alone (what
/// `branch_book` falls back to).
pub(crate) fn error_workbook(
    template: &Template,
    rows: &[&IssueRow],
) -> Result<Vec<u8>, PipelineError> {
    let f = Formats::new();
    let mut wb = report_workbook();
    let ws = wb.add_worksheet();
    ws.set_name(template.title)?;
    write_error_sheet(ws, template, rows, &f)?;
    write_codes_sheet(&mut wb, &f)?;
    Ok(wb.save_to_buffer()?)
}
