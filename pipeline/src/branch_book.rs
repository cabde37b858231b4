//! Organisation error workbooks at scale (SPEC §7): a million-row upload can need tens of
//! thousands of them, and most of each workbook (styles, theme, the 说明 sheet, the
//! package plumbing) is the same every time. rust_xlsxwriter writes one prototype per
//! report run; each organisation's workbook copies the prototype's constant parts as they
//! are, already compressed, and generates only what is its own: the data sheet (inline
//! strings, as rust_xlsxwriter writes them in constant-memory mode), the notes and their
//! drawing, and the filter range in `workbook.xml`.
//!
//! The generated parts are byte for byte what rust_xlsxwriter writes for the same rows
//! (checked by a test against it), so the files open wherever rust_xlsxwriter's do.
//! Anything this writer does not cover (a workbook without notes, a cell over Excel's
//! string limit) goes through rust_xlsxwriter itself.

use std::fmt::Write as _;
use std::io::{Cursor, Read, Write};

use schemas::{Severity, Template};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::PipelineError;
use crate::error_sheet::{
    Formats, IssueRow, NOTE_AUTHOR, NOTE_HEIGHT, NOTE_WIDTH, note, report_workbook,
    setup_error_sheet, write_codes_sheet,
};

const SHEET: &str = "xl/worksheets/sheet1.xml";
const COMMENTS: &str = "xl/comments1.xml";
const VML: &str = "xl/drawings/vmlDrawing1.vml";
const WORKBOOK: &str = "xl/workbook.xml";

/// Excel's limit on the characters of a cell, in UTF-16 units.
const MAX_STRING_LEN: usize = schemas::excel::MAX_CELL_CHARS;
/// rust_xlsxwriter's default row height and column width in pixels.
const ROW_PX: u32 = 20;
const DEFAULT_COL_PX: u32 = 64;

/// What a workbook part of the prototype becomes in each organisation's workbook.
enum Part {
    /// Copied as it is, still compressed: entry `index` of the prototype.
    Copy(usize),
    Sheet,
    Comments,
    Vml,
    Workbook,
}

/// The prototype of one template's error workbook, split where each organisation's
/// workbook differs.
pub(crate) struct BranchBooks<'t> {
    template: &'t Template,
    prototype: Vec<u8>,
    parts: Vec<(String, Part)>,
    /// `sheet1.xml`: [before the dimension, before the rows, before the filter range,
    /// the rest].
    sheet: [String; 4],
    /// `comments1.xml`: [up to the comment list, the rest].
    comments: [String; 2],
    /// The note author's index in the comments' author list.
    author_id: String,
    /// `vmlDrawing1.vml`: [up to the shape id map, up to the first shape, the rest].
    vml: [String; 3],
    /// `workbook.xml`: [up to the filter's last row, the rest].
    workbook: [String; 2],
    xf: Xf,
    /// Column widths in pixels, by column.
    col_px: Vec<u32>,
}

/// Style indexes of the prototype's formats.
#[derive(Debug, Clone, Copy)]
struct Xf {
    header: u32,
    error: u32,
    warning: u32,
    wrap: u32,
}

/// Where the prototype registers its formats: header in row 1, then in row 2 the error,
/// wrap and warning fills, the order rust_xlsxwriter gives them for a sheet whose first
/// flagged cell is an error.
const PROTO_ERROR: &str = "A2";
const PROTO_WRAP: &str = "B2";
const PROTO_WARNING: &str = "C2";

impl<'t> BranchBooks<'t> {
    /// Writes the prototype with rust_xlsxwriter and splits it.
    pub(crate) fn new(template: &'t Template) -> Result<BranchBooks<'t>, PipelineError> {
        let f = Formats::new();
        let mut wb = report_workbook();
        let ws = wb.add_worksheet();
        ws.set_name(template.title)?;
        let n = template.columns.len() as u16;
        setup_error_sheet(ws, template, 1)?;
        for c in 0..n + 3 {
            ws.write_blank(0, c, &f.header)?;
        }
        ws.write_blank(1, 0, &f.error)?;
        ws.write_blank(1, 1, &f.wrap)?;
        ws.write_blank(1, 2, &f.warning)?;
        ws.insert_note(1, 0, &note("-"))?;
        write_codes_sheet(&mut wb, &f)?;
        let prototype = wb.save_to_buffer()?;
        Self::split(template, prototype)
    }

    fn split(template: &'t Template, prototype: Vec<u8>) -> Result<BranchBooks<'t>, PipelineError> {
        let mut zip = ZipArchive::new(Cursor::new(prototype.as_slice()))?;
        let mut parts = Vec::with_capacity(zip.len());
        let text =
            |zip: &mut ZipArchive<Cursor<&[u8]>>, i: usize| -> Result<String, PipelineError> {
                let mut s = String::new();
                zip.by_index(i)?.read_to_string(&mut s)?;
                Ok(s)
            };
        let (mut sheet, mut comments, mut vml, mut workbook) = (None, None, None, None);
        for i in 0..zip.len() {
            let name = zip
                .name_for_index(i)
                .transpose()?
                .unwrap_or_default()
                .to_string();
            let part = match name.as_str() {
                SHEET => {
                    sheet = Some(text(&mut zip, i)?);
                    Part::Sheet
                }
                COMMENTS => {
                    comments = Some(text(&mut zip, i)?);
                    Part::Comments
                }
                VML => {
                    vml = Some(text(&mut zip, i)?);
                    Part::Vml
                }
                WORKBOOK => {
                    workbook = Some(text(&mut zip, i)?);
                    Part::Workbook
                }
                _ => Part::Copy(i),
            };
            parts.push((name, part));
        }
        let missing = PipelineError::Prototype;
        let sheet = sheet.ok_or(missing("no data sheet"))?;
        let comments = comments.ok_or(missing("no notes"))?;
        let vml = vml.ok_or(missing("no note drawing"))?;
        let workbook = workbook.ok_or(missing("no workbook part"))?;

        let xf = Xf {
            header: style_of(&sheet, "A1").ok_or(missing("no header style"))?,
            error: style_of(&sheet, PROTO_ERROR).ok_or(missing("no error style"))?,
            warning: style_of(&sheet, PROTO_WARNING).ok_or(missing("no warning style"))?,
            wrap: style_of(&sheet, PROTO_WRAP).ok_or(missing("no wrap style"))?,
        };

        // sheet1.xml: the dimension, the rows and the filter range are each workbook's.
        let (head, rest) = cut_value(&sheet, "<dimension ref=\"").ok_or(missing("no dimension"))?;
        let (mid, rest) = split_after(rest, "<sheetData>").ok_or(missing("no rows"))?;
        let (_, rest) = split_before(rest, "</sheetData>").ok_or(missing("no rows end"))?;
        let (before_filter, tail) =
            cut_value(rest, "<autoFilter ref=\"").ok_or(missing("no filter"))?;
        let sheet = [head, mid, before_filter, tail].map(str::to_string);

        let (head, rest) =
            split_after(&comments, "<commentList>").ok_or(missing("no comment list"))?;
        let (_, tail) =
            split_before(rest, "</commentList>").ok_or(missing("no comment list end"))?;
        let comments = [head.to_string(), tail.to_string()];
        let author_id = attr_value(rest, "authorId=\"")
            .ok_or(missing("no author"))?
            .to_string();

        let (head, rest) =
            cut_value(&vml, "<o:idmap v:ext=\"edit\" data=\"").ok_or(missing("no id map"))?;
        let (mid, rest) = split_before(rest, "<v:shape id=").ok_or(missing("no shape"))?;
        let (_, tail) = split_before(rest, "</xml>").ok_or(missing("no drawing end"))?;
        let vml = [head.to_string(), mid.to_string(), tail.to_string()];

        // workbook.xml: the filter's defined name ends with the last row, `…$R$2<`.
        let start = workbook
            .find("_xlnm._FilterDatabase")
            .ok_or(missing("no filter name"))?;
        let end = start
            + workbook[start..]
                .find("</definedName>")
                .ok_or(missing("no filter name end"))?;
        let digits = workbook[..end]
            .rfind('$')
            .filter(|&d| d > start && workbook[d + 1..end] == *"2")
            .ok_or(missing("filter name not on row 2"))?;
        let workbook = [workbook[..=digits].to_string(), workbook[end..].to_string()];

        let n = template.columns.len();
        let mut col_px: Vec<u32> = template
            .columns
            .iter()
            .map(|c| width_px(crate::error_sheet::column_width(c.field)))
            .collect();
        col_px.extend(
            crate::error_sheet::REPORT_WIDTHS
                .iter()
                .map(|w| width_px(*w)),
        );
        debug_assert_eq!(col_px.len(), n + 3);

        Ok(BranchBooks {
            template,
            prototype,
            parts,
            sheet,
            comments,
            author_id,
            vml,
            workbook,
            xf,
            col_px,
        })
    }

    /// One organisation's workbook.
    pub(crate) fn bytes(&self, rows: &[&IssueRow]) -> Result<Vec<u8>, PipelineError> {
        match self.to_bytes(rows)? {
            Some(bytes) => Ok(bytes),
            None => crate::error_sheet::error_workbook(self.template, rows),
        }
    }

    /// The workbook's bytes, or `None` when the rows need rust_xlsxwriter itself.
    pub(crate) fn to_bytes(&self, rows: &[&IssueRow]) -> Result<Option<Vec<u8>>, PipelineError> {
        let Some(book) = self.generate(rows) else {
            return Ok(None);
        };
        let mut src = ZipArchive::new(Cursor::new(self.prototype.as_slice()))?;
        let mut out = ZipWriter::new(Cursor::new(Vec::with_capacity(16 * 1024)));
        // As rust_xlsxwriter stores its parts (at the reports' level 1).
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1))
            .unix_permissions(0o600)
            .last_modified_time(zip::DateTime::default());
        for (name, part) in &self.parts {
            let generated = match part {
                Part::Copy(i) => {
                    out.raw_copy_file(src.by_index_raw(*i)?)?;
                    continue;
                }
                Part::Sheet => &book.sheet,
                Part::Comments => &book.comments,
                Part::Vml => &book.vml,
                Part::Workbook => &book.workbook,
            };
            out.start_file(name.as_str(), options)?;
            out.write_all(generated.as_bytes())?;
        }
        Ok(Some(out.finish()?.into_inner()))
    }

    /// The four parts of one workbook, or `None` when it has no notes or a string over
    /// Excel's limit.
    fn generate(&self, rows: &[&IssueRow]) -> Option<Generated> {
        let template = self.template;
        let n = template.columns.len();
        // 行号, 错误代码, 错误原因.
        let [row_col, codes_col, reasons_col] = [n, n + 1, n + 2].map(col_name);
        let last_col = &reasons_col;
        let last_row = rows.len() + 1;
        let mut sheet = String::with_capacity(1024 + rows.len() * 512);
        let mut comments = String::with_capacity(512 + rows.len() * 400);
        let mut shapes = String::with_capacity(rows.len() * 900);
        let mut notes = 0u32;

        let range = format!("A1:{last_col}{last_row}");
        sheet.push_str(&self.sheet[0]);
        sheet.push_str(&range);
        sheet.push_str(&self.sheet[1]);
        sheet.push_str("<row r=\"1\">");
        let headers = template
            .columns
            .iter()
            .map(|c| c.field.header())
            .chain(schemas::template::REPORT_COLUMNS);
        for (i, h) in headers.enumerate() {
            inline_cell(&mut sheet, &col_name(i), 1, h, self.xf.header);
        }
        sheet.push_str("</row>");

        let columns: Vec<(String, &str)> = template
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (col_name(i), c.field.key()))
            .collect();
        let mut texts: Vec<&str> = Vec::new();
        for (k, r) in rows.iter().enumerate() {
            let x = k + 2;
            let _ = write!(sheet, "<row r=\"{x}\">");
            for (i, (letters, key)) in columns.iter().enumerate() {
                let value = r.values[i].as_deref().unwrap_or("");
                if too_long(value) {
                    return None;
                }
                texts.clear();
                let mut is_error = false;
                for fd in r.findings.iter().filter(|fd| fd.field == *key) {
                    texts.push(&fd.message);
                    is_error |= fd.code.severity() == Severity::Error;
                }
                if texts.is_empty() {
                    if !value.is_empty() {
                        inline_cell(&mut sheet, letters, x, value, 0);
                    }
                    continue;
                }
                let xf = if is_error {
                    self.xf.error
                } else {
                    self.xf.warning
                };
                if value.is_empty() {
                    let _ = write!(sheet, "<c r=\"{letters}{x}\" s=\"{xf}\"/>");
                } else {
                    inline_cell(&mut sheet, letters, x, value, xf);
                }
                let text = texts.join("\n");
                notes += 1;
                self.comment(&mut comments, letters, x, &text);
                self.shape(&mut shapes, notes, x - 1, i);
            }
            let _ = write!(sheet, "<c r=\"{row_col}{x}\"><v>{}</v></c>", r.row);
            let mut codes: Vec<&str> = r.findings.iter().map(|fd| fd.code.code()).collect();
            codes.dedup();
            let codes = codes.join(";");
            if !codes.is_empty() {
                inline_cell(&mut sheet, &codes_col, x, &codes, 0);
            }
            let reasons = crate::error_sheet::reasons(template, &r.findings);
            if too_long(&reasons) || too_long(&codes) {
                return None;
            }
            if reasons.is_empty() {
                let _ = write!(sheet, "<c r=\"{reasons_col}{x}\" s=\"{}\"/>", self.xf.wrap);
            } else {
                inline_cell(&mut sheet, &reasons_col, x, &reasons, self.xf.wrap);
            }
            sheet.push_str("</row>");
        }
        if notes == 0 {
            return None;
        }
        sheet.push_str(&self.sheet[2]);
        sheet.push_str(&range);
        sheet.push_str(&self.sheet[3]);

        let mut c = String::with_capacity(self.comments[0].len() + comments.len() + 64);
        c.push_str(&self.comments[0]);
        c.push_str(&comments);
        c.push_str(&self.comments[1]);

        // One VML id block per 1,024 notes: data="1" or "1,2", …
        let ids = (1..=1 + notes / 1024)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut v = String::with_capacity(self.vml[1].len() + shapes.len() + 256);
        v.push_str(&self.vml[0]);
        v.push_str(&ids);
        v.push_str(&self.vml[1]);
        v.push_str(&shapes);
        v.push_str(&self.vml[2]);

        let workbook = format!("{}{last_row}{}", self.workbook[0], self.workbook[1]);
        Some(Generated {
            sheet,
            comments: c,
            vml: v,
            workbook,
        })
    }

    /// A `<comment>`: the author in bold on its own line, then the text, as
    /// rust_xlsxwriter writes a note with an author.
    fn comment(&self, out: &mut String, letters: &str, row: usize, text: &str) {
        const RPR: &str = "<sz val=\"8\"/><color indexed=\"81\"/><rFont val=\"Tahoma\"/><family val=\"2\"/></rPr>";
        let _ = write!(
            out,
            "<comment ref=\"{letters}{row}\" authorId=\"{}\"><text><r><rPr><b/>{RPR}<t>{NOTE_AUTHOR}:</t></r><r><rPr>{RPR}<t xml:space=\"preserve\">",
            self.author_id
        );
        // The text starts on the line after the author.
        out.push('\n');
        escape_data(out, text);
        out.push_str("</t></r></text></comment>");
    }

    /// A note's `<v:shape>`, placed as rust_xlsxwriter places it: one column right of
    /// its cell and one row up, 15 and 10 pixels in.
    fn shape(&self, out: &mut String, z: u32, row: usize, col: usize) {
        let (x1, y1) = (15u32, 10u32);
        let col_start = col + 1;
        let row_start = row - 1;
        let x_abs: u32 = (0..col_start).map(|c| self.px(c)).sum::<u32>() + x1;
        let y_abs = row_start as u32 * ROW_PX + y1;
        let mut col_end = col_start;
        let mut x2 = f64::from(NOTE_WIDTH + x1);
        while x2 >= f64::from(self.px(col_end)) {
            x2 -= f64::from(self.px(col_end));
            col_end += 1;
        }
        let mut row_end = row_start;
        let mut y2 = f64::from(NOTE_HEIGHT + y1);
        while y2 >= f64::from(ROW_PX) {
            y2 -= f64::from(ROW_PX);
            row_end += 1;
        }
        let (left, top) = (dpi(f64::from(x_abs)), dpi(f64::from(y_abs)));
        let (width, height) = (dpi(f64::from(NOTE_WIDTH)), dpi(f64::from(NOTE_HEIGHT)));
        let id = 1024 + z;
        let _ = write!(
            out,
            "<v:shape id=\"_x0000_s{id}\" type=\"#_x0000_t202\" style=\"position:absolute;margin-left:{left}pt;margin-top:{top}pt;width:{width}pt;height:{height}pt;z-index:{z};visibility:hidden\" fillcolor=\"#ffffe1\" o:insetmode=\"auto\"><v:fill color2=\"#ffffe1\"/><v:shadow on=\"t\" color=\"black\" obscured=\"t\"/><v:path o:connecttype=\"none\"/><v:textbox style=\"mso-direction-alt:auto\"><div style=\"text-align:left\"></div></v:textbox><x:ClientData ObjectType=\"Note\"><x:MoveWithCells/><x:SizeWithCells/><x:Anchor>{col_start}, {x1}, {row_start}, {y1}, {col_end}, {x2}, {row_end}, {y2}</x:Anchor><x:AutoFill>False</x:AutoFill><x:Row>{row}</x:Row><x:Column>{col}</x:Column></x:ClientData></v:shape>"
        );
    }

    fn px(&self, col: usize) -> u32 {
        self.col_px.get(col).copied().unwrap_or(DEFAULT_COL_PX)
    }
}

struct Generated {
    sheet: String,
    comments: String,
    vml: String,
    workbook: String,
}

/// Over Excel's cell limit: rust_xlsxwriter refuses it, so such a workbook goes to it.
fn too_long(s: &str) -> bool {
    s.len() > MAX_STRING_LEN && s.encode_utf16().count() > MAX_STRING_LEN
}

/// A column width in characters as pixels, as rust_xlsxwriter converts it.
fn width_px(width: f64) -> u32 {
    const DIGIT: f64 = 7.0;
    const PADDING: u32 = 5;
    if width == 0.0 {
        0
    } else if width < 1.0 {
        (width * (DIGIT + f64::from(PADDING))).round() as u32
    } else {
        (width * DIGIT).round() as u32 + PADDING
    }
}

/// Pixels at 96 DPI as points at 72, rounded as Excel does.
fn dpi(px: f64) -> f64 {
    (px + 0.25).floor() * 72.0 / 96.0
}

/// `A`, `B`, …, `Z`, `AA`, … for a 0-based column.
fn col_name(col: usize) -> String {
    let mut n = col + 1;
    let mut out = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        out.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// An inline-string cell.
fn inline_cell(out: &mut String, letters: &str, row: usize, text: &str, xf: u32) {
    let _ = write!(out, "<c r=\"{letters}{row}\"");
    if xf > 0 {
        let _ = write!(out, " s=\"{xf}\"");
    }
    out.push_str(" t=\"inlineStr\"><is><t");
    if text.starts_with(['\t', '\n', ' ']) || text.ends_with(['\t', '\n', ' ']) {
        out.push_str(" xml:space=\"preserve\"");
    }
    out.push('>');
    escape_data(out, &escape_literal_escapes(text));
    out.push_str("</t></is></c>");
}

/// Cell text that itself looks like Excel's `_xHHHH_` escape gets its underscore
/// escaped (`_x005F_xHHHH_`), as Excel and rust_xlsxwriter do.
fn escape_literal_escapes(s: &str) -> std::borrow::Cow<'_, str> {
    const LEN: usize = 7;
    if !s.contains("_x") {
        return s.into();
    }
    let mut out = s.to_string();
    for (i, _) in s.rmatch_indices("_x") {
        let end = i + LEN;
        if end > s.len() || !s.is_char_boundary(end - 1) || !s[end - 1..].starts_with('_') {
            continue;
        }
        if s[i + 2..end - 1].chars().all(|c| c.is_ascii_hexdigit()) {
            out.replace_range(i..i, "_x005F");
        }
    }
    out.into()
}

/// XML text data: `& < >` escaped, control characters as `_xHHHH_`, as Excel writes them.
fn escape_data(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        let code = ch as u32;
        let replace = match ch {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\t' | '\n' => continue,
            _ if code < 0x20 || ch == '\u{FFFE}' || ch == '\u{FFFF}' => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if replace.is_empty() {
            let _ = write!(out, "_x{code:04X}_");
        } else {
            out.push_str(replace);
        }
        start = i + ch.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// The `s` attribute of cell `cell` in a sheet's XML.
fn style_of(sheet: &str, cell: &str) -> Option<u32> {
    let needle = format!("<c r=\"{cell}\" s=\"");
    let at = sheet.find(&needle)? + needle.len();
    let end = at + sheet[at..].find('"')?;
    sheet[at..end].parse().ok()
}

/// Splits around the value of an attribute: (text through `marker`, text from the
/// closing quote on).
fn cut_value<'a>(s: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let at = s.find(marker)? + marker.len();
    let end = at + s[at..].find('"')?;
    Some((&s[..at], &s[end..]))
}

/// The value of the first attribute opened by `marker`.
fn attr_value<'a>(s: &'a str, marker: &str) -> Option<&'a str> {
    let at = s.find(marker)? + marker.len();
    let end = at + s[at..].find('"')?;
    Some(&s[at..end])
}

fn split_after<'a>(s: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let at = s.find(marker)? + marker.len();
    Some((&s[..at], &s[at..]))
}

fn split_before<'a>(s: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let at = s.find(marker)?;
    Some((&s[..at], &s[at..]))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rust_xlsxwriter::{DocProperties, ExcelDateTime};
    use schemas::{ErrorCode, Field, TemplateKind};

    use super::*;
    use crate::error_sheet::{Finding, write_error_sheet};

    fn finding(field: Field, code: ErrorCode, message: &str) -> Finding {
        Finding {
            field: field.key().to_string(),
            code,
            message: message.to_string(),
        }
    }

    /// Rows whose first flagged cell is an error and whose warnings come later (the
    /// order the prototype registers its styles in), with text that needs escaping:
    /// markup, control characters, literal `_x0041_`, edge whitespace, full-width text,
    /// an empty flagged cell, several findings in one cell, and a row number past 26.
    fn rows(template: &Template, count: usize) -> Vec<IssueRow> {
        let n = template.columns.len();
        (0..count)
            .map(|k| {
                let mut values: Vec<Option<String>> =
                    (0..n).map(|i| Some(format!("值{k}-{i}"))).collect();
                values[1] = Some(" <a&b> \u{1}x_x0041_ ".to_string());
                values[2] = None;
                values[3] = Some(String::new());
                let key = |i: usize| template.columns[i].field;
                let findings = match k % 3 {
                    0 => vec![
                        finding(key(0), ErrorCode::NameInvalid, "姓名<不对>"),
                        finding(key(0), ErrorCode::RequiredMissing, "\u{2}必填 "),
                        finding(key(2), ErrorCode::DateInvalid, "日期&时间"),
                    ],
                    1 => vec![
                        finding(key(1), ErrorCode::OverAge, "超龄"),
                        finding(key(n - 1), ErrorCode::OrgNameParentheses, "括号\n全角"),
                    ],
                    _ => vec![
                        finding(key(3), ErrorCode::PhoneInvalid, "手机号"),
                        finding(key(3), ErrorCode::OverAge, "提示"),
                        finding(Field::IdNumber, ErrorCode::IdDuplicateInFile, "重复"),
                    ],
                };
                IssueRow {
                    row: 1000 + 7 * k as u32,
                    values,
                    findings,
                    report_org: "组织".into(),
                    province: None,
                    current_org: "组织".into(),
                }
            })
            .collect()
    }

    fn entries(bytes: &[u8]) -> BTreeMap<String, (usize, String)> {
        let mut zip = ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).unwrap();
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                (f.name().unwrap().to_string(), (i, s))
            })
            .collect()
    }

    /// What rust_xlsxwriter writes for the same rows, its data sheet in constant-memory
    /// mode (inline strings).
    fn reference(template: &Template, rows: &[&IssueRow]) -> Vec<u8> {
        let f = Formats::new();
        let mut wb = report_workbook();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        ws.set_name(template.title).unwrap();
        write_error_sheet(ws, template, rows, &f).unwrap();
        write_codes_sheet(&mut wb, &f).unwrap();
        wb.set_properties(&fixed_properties());
        wb.save_to_buffer().unwrap()
    }

    fn fixed_properties() -> DocProperties {
        let t = ExcelDateTime::from_ymd(2026, 11, 21).unwrap();
        DocProperties::new().set_creation_datetime(&t)
    }

    #[test]
    fn every_part_is_what_rust_xlsxwriter_writes() {
        for kind in [TemplateKind::Members, TemplateKind::Cadres] {
            let template = kind.template();
            // From two rows on every style is used, as in the prototype. 1,100 rows:
            // more than 1,024 notes, so two VML id blocks.
            for count in [2, 5, 1100] {
                let rows = rows(template, count);
                let rows: Vec<&IssueRow> = rows.iter().collect();
                let books = BranchBooks::new(template).unwrap();
                let ours = books.to_bytes(&rows).unwrap().expect("generated");
                let theirs = reference(template, &rows);
                let (ours, theirs) = (entries(&ours), entries(&theirs));
                assert_eq!(
                    ours.keys().collect::<Vec<_>>(),
                    theirs.keys().collect::<Vec<_>>(),
                    "{kind:?} {count}"
                );
                for (name, (i, text)) in &theirs {
                    // The creation time is the prototype's.
                    if name == "docProps/core.xml" {
                        continue;
                    }
                    let (j, mine) = &ours[name];
                    assert_eq!(i, j, "{name}: position in the package");
                    if mine != text {
                        let at = mine
                            .bytes()
                            .zip(text.bytes())
                            .position(|(a, b)| a != b)
                            .unwrap_or(mine.len().min(text.len()));
                        let around = |s: &str| {
                            let from = s.floor_char_boundary(at.saturating_sub(150));
                            let to = s.ceil_char_boundary((at + 150).min(s.len()));
                            s[from..to].to_string()
                        };
                        panic!(
                            "{kind:?} {count} rows: {name} differs at byte {at}\nours:   {}\ntheirs: {}",
                            around(mine),
                            around(text)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn workbooks_it_does_not_cover_go_to_rust_xlsxwriter() {
        let template = TemplateKind::Members.template();
        let books = BranchBooks::new(template).unwrap();
        // No finding on a column of the template: no notes.
        let mut no_notes = rows(template, 1);
        no_notes[0].findings = vec![finding(Field::IdNumber, ErrorCode::OrgNotFound, "x")];
        no_notes[0].findings[0].field = "not_a_column".into();
        assert!(books.to_bytes(&[&no_notes[0]]).unwrap().is_none());
        // A cell over Excel's limit.
        let mut long = rows(template, 1);
        long[0].values[0] = Some("长".repeat(MAX_STRING_LEN + 1));
        assert!(books.to_bytes(&[&long[0]]).unwrap().is_none());
        // rust_xlsxwriter writes the first and refuses the long cell, as before.
        let bytes = books.bytes(&[&no_notes[0]]).unwrap();
        assert_eq!(
            bytes,
            crate::error_sheet::error_workbook(template, &[&no_notes[0]]).unwrap()
        );
        assert!(books.bytes(&[&long[0]]).is_err());
    }

    #[test]
    fn columns_are_named_as_excel_names_them() {
        for (i, name) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (51, "AZ"),
            (52, "BA"),
            (701, "ZZ"),
            (702, "AAA"),
        ] {
            assert_eq!(col_name(i), name);
        }
    }
}
