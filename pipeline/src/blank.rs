//! Blank templates A and B to download (SPEC §3, §12.3): the headers under an
//! instructions row, and a dropdown on every enumerated column, so mistakes are
//! prevented where they are made. `roster validate` reads them filled in as it reads any
//! roster (the instructions row is a title row above the header).

use rust_xlsxwriter::{DataValidation, Format, Formula, Workbook, XlsxError};
use schemas::{Kind, Requirement, TemplateKind};

/// The sheet holding the dropdowns' values (hidden).
pub const OPTIONS_SHEET: &str = "选项";
/// Rows a dropdown covers below the header: Excel's whole sheet.
const LAST_ROW: u32 = schemas::excel::MAX_ROWS - 1;

/// The row of the headers (0-based), under the instructions row.
pub const HEADER_ROW: u32 = 1;

/// A blank template as a workbook, before it is saved: the first sheet is the one to
/// fill in, from row `HEADER_ROW + 1`.
pub fn template_workbook(kind: TemplateKind) -> Result<Workbook, XlsxError> {
    let template = kind.template();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(template.title)?;
    let text = Format::new().set_num_format("@");
    let head = Format::new().set_bold().set_background_color(0xD9E1F2);
    let note = Format::new().set_text_wrap().set_font_color(0x7F7F7F);
    let last_col = template.columns.len() as u16 - 1;
    ws.merge_range(
        0,
        0,
        0,
        last_col,
        &format!(
            "{}：带 * 的列必填；请从下拉列表中选择可选值；身份证号码、手机号码、\
             发展团员编号请按文本填写；日期可写作 2017-05 或 2017-05-04。填写从第3行开始，请勿修改表头。",
            template.title
        ),
        &note,
    )?;
    ws.set_row_height(0, 45)?;
    let mut lists = Vec::new();
    for (c, column) in template.columns.iter().enumerate() {
        let c = c as u16;
        let header = match column.requirement {
            Requirement::Required => format!("*{}", column.field.header()),
            _ => column.field.header().to_string(),
        };
        ws.write_string_with_format(HEADER_ROW, c, &header, &head)?;
        ws.set_column_width(
            c,
            (column.field.header().chars().count() as f64 * 2.2).max(12.0),
        )?;
        match column.kind {
            Kind::IdNumber | Kind::Phone | Kind::DevNumber => {
                ws.set_column_format(c, &text)?;
                ws.set_column_width(c, 22)?;
            }
            Kind::OrgName => ws.set_column_width(c, 40).map(|_| ())?,
            Kind::Enum(vocab) => lists.push((c, vocab)),
            _ => {}
        }
    }
    ws.set_freeze_panes(HEADER_ROW + 1, 0)?;
    for (n, (c, vocab)) in lists.iter().enumerate() {
        // Lists longer than 255 characters (民族) cannot be inline: every list is a range
        // of the options sheet.
        let letter = column_letter(n as u16);
        let range = format!(
            "='{OPTIONS_SHEET}'!${letter}$1:${letter}${}",
            vocab.values.len()
        );
        let validation = DataValidation::new()
            .allow_list_formula(Formula::new(range))
            .set_error_title("无效的值")?
            .set_error_message(format!("请从下拉列表中选择“{}”", vocab.name))?;
        ws.add_data_validation(HEADER_ROW + 1, *c, LAST_ROW, *c, &validation)?;
    }
    let options = wb.add_worksheet();
    options.set_name(OPTIONS_SHEET)?;
    for (n, (_, vocab)) in lists.iter().enumerate() {
        for (r, v) in vocab.values.iter().enumerate() {
            options.write_string(r as u32, n as u16, *v)?;
        }
    }
    options.set_hidden(true);
    Ok(wb)
}

/// A blank template's bytes.
pub fn template_bytes(kind: TemplateKind) -> Result<Vec<u8>, XlsxError> {
    template_workbook(kind)?.save_to_buffer()
}

fn column_letter(n: u16) -> String {
    let mut n = n as u32 + 1;
    let mut s = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII letters")
}
