//! The worksheet's `sheetData`, scanned a window of bytes at a time into cells with the
//! positions, values and types calamine's cell reader gives; the shared strings part,
//! scanned the same way into one text buffer.

use calamine::{CellErrorType, DataRef, ExcelDateTime, ExcelDateTimeType};

use super::Stop;
use super::meta::NumFmt;
use super::scan::{self, Bad, Scan, Tok, local};

/// The shared strings: one buffer and where each string ends, so a cell that refers to
/// one borrows it.
#[derive(Debug, Default)]
pub struct Sst {
    text: String,
    ends: Vec<usize>,
}

impl Sst {
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }
}

/// Scans `sharedStrings.xml` window by window.
#[derive(Default)]
pub struct SstScan {
    started: bool,
    done: bool,
    scratch: String,
    nesting: scan::Nesting,
    pub sst: Sst,
}

impl SstScan {
    /// Consumes what it can of `buf`; returns the bytes consumed.
    pub fn feed(&mut self, buf: &[u8], eof: bool) -> Scan<usize> {
        let mut at = 0;
        while !self.done {
            let Some((tok, after)) = scan::next(buf, at)? else {
                break;
            };
            let item =
                matches!(tok, Tok::Start { name, .. } if self.started && local(name) == b"si");
            if !item {
                self.nesting.see(&tok)?;
                match tok {
                    Tok::Start { attrs, .. } => scan::check_attrs(attrs)?,
                    Tok::Text(t) => scan::check_text(t)?,
                    _ => {}
                }
            }
            match tok {
                Tok::Start { name, empty, .. } if !self.started && local(name) == b"sst" => {
                    self.started = true;
                    self.done = empty;
                    at = after;
                }
                Tok::Start { name, empty, .. } if self.started && local(name) == b"si" => {
                    if !empty {
                        let text = &mut self.sst.text;
                        let Some(end) =
                            scan::string_item(buf, after, name, text, &mut self.scratch)?
                        else {
                            break;
                        };
                        at = end;
                    } else {
                        at = after;
                    }
                    self.sst.ends.push(self.sst.text.len());
                }
                Tok::End { name } if self.started && local(name) == b"sst" => {
                    self.done = true;
                    at = after;
                }
                _ => at = after,
            }
        }
        if eof && !self.done {
            return Err(Bad("shared strings end early"));
        }
        Ok(if self.done { buf.len() } else { at })
    }
}

/// What the sheet scan needs of the workbook.
pub struct Context<'c, 's> {
    pub sst: &'s Sst,
    pub formats: &'c [NumFmt],
    pub is_1904: bool,
}

/// Scans a worksheet window by window, keeping calamine's row and column counters.
#[derive(Default)]
pub struct SheetScan {
    in_data: bool,
    pub done: bool,
    row: u32,
    col: u32,
    scratch: String,
    nesting: scan::Nesting,
}

impl SheetScan {
    /// Consumes whole tokens and whole `<c>` elements of `buf`, handing each cell to
    /// `emit`; returns the bytes consumed. Stops at `</sheetData>`.
    pub fn feed<'s>(
        &mut self,
        buf: &[u8],
        eof: bool,
        cx: &Context<'_, 's>,
        emit: &mut impl FnMut(u32, u32, DataRef<'s>) -> Result<(), crate::error::Rejection>,
    ) -> Result<usize, Stop> {
        let mut at = 0;
        while !self.done {
            let Some((tok, after)) = scan::next(buf, at)? else {
                break;
            };
            // A cell balances its own elements.
            let cell =
                self.in_data && matches!(tok, Tok::Start { name, .. } if local(name) == b"c");
            if !cell {
                self.nesting.see(&tok)?;
                match tok {
                    Tok::Start { attrs, .. } => scan::check_attrs(attrs)?,
                    Tok::Text(t) => scan::check_text(t)?,
                    _ => {}
                }
            }
            if !self.in_data {
                match tok {
                    Tok::Start { name, attrs, empty } => match local(name) {
                        b"sheetData" => {
                            self.in_data = true;
                            self.done = empty;
                        }
                        b"dimension" => {
                            let r =
                                scan::attr(attrs, b"ref")?.ok_or(Bad("dimension without ref"))?;
                            dimension(r)?;
                        }
                        _ => {}
                    },
                    Tok::Text(t) | Tok::CData(t) => {
                        scan::utf8(t)?;
                    }
                    _ => {}
                }
                at = after;
                continue;
            }
            match tok {
                Tok::Start { name, attrs, empty } if local(name) == b"row" => {
                    if let Some(r) = scan::attr(attrs, b"r")? {
                        self.row = row_of(r)?;
                    }
                    if empty {
                        self.end_row();
                    }
                    at = after;
                }
                Tok::End { name } if local(name) == b"row" => {
                    self.end_row();
                    at = after;
                }
                Tok::Start { name, attrs, empty } if local(name) == b"c" => {
                    let [r, s, t] = scan::cell_attrs(attrs)?;
                    let (row, col) = match r {
                        Some(r) => {
                            let (row, col) = cell_ref(r)?;
                            self.col = col;
                            (row, col)
                        }
                        None => (self.row, self.col),
                    };
                    let (value, end) = if empty {
                        (DataRef::Empty, after)
                    } else {
                        match cell_value(buf, after, name, s, t, cx, &mut self.scratch)? {
                            Some(v) => v,
                            None => break,
                        }
                    };
                    self.col = self.col.wrapping_add(1);
                    emit(row, col, value).map_err(Stop::Reject)?;
                    at = end;
                }
                // `<sheetData/>` here ends the sheet for calamine's parser too.
                Tok::End { name }
                | Tok::Start {
                    name, empty: true, ..
                } if local(name) == b"sheetData" => {
                    self.done = true;
                    at = after;
                }
                Tok::Text(t) | Tok::CData(t) => {
                    scan::utf8(t)?;
                    at = after;
                }
                _ => at = after,
            }
        }
        if eof && !self.done {
            return Err(Stop::Fallback("sheet ends inside sheetData"));
        }
        Ok(if self.done { buf.len() } else { at })
    }

    fn end_row(&mut self) {
        self.row = self.row.wrapping_add(1);
        self.col = 0;
    }
}

/// The value of a `<c>` element from just after its start tag, and where its end tag
/// ends; the last of its `<v>`, `<is>` and `<f>` children decides, as in calamine.
fn cell_value<'s>(
    buf: &[u8],
    mut at: usize,
    cell: &[u8],
    s: Option<&[u8]>,
    t: Option<&[u8]>,
    cx: &Context<'_, 's>,
    scratch: &mut String,
) -> Scan<Option<(DataRef<'s>, usize)>> {
    // The two shapes nearly every cell has, matched on their bytes: `<v>…</v></c>` and
    // `<is><t>…</t></is></c>`. Anything else takes the token loop below.
    let rest = &buf[at..];
    if let Some(body) = rest.strip_prefix(b"<v>")
        && matches!(t, None | Some(b"n" | b"s" | b"b" | b"e"))
    {
        let Some(n) = memchr::memchr(b'<', body) else {
            return Ok(None);
        };
        let (raw, tail) = body.split_at(n);
        if tail.len() < 8 {
            return Ok(None);
        }
        if tail.starts_with(b"</v></c>") && !raw.contains(&b'&') {
            let value = if raw.is_empty() {
                DataRef::Empty
            } else {
                read_v(scan::utf8(raw)?, s, t, cx)?
            };
            return Ok(Some((value, at + 3 + n + 8)));
        }
    } else if let Some(body) = rest.strip_prefix(b"<is><t>") {
        let Some(n) = memchr::memchr(b'<', body) else {
            return Ok(None);
        };
        let (raw, tail) = body.split_at(n);
        if tail.len() < 13 {
            return Ok(None);
        }
        if tail.starts_with(b"</t></is></c>") {
            scratch.clear();
            scan::push_text(scratch, raw)?;
            let text = scan::unescape_excel(scan::trim_xml_space(scratch));
            return Ok(Some((DataRef::String(text.into_owned()), at + 7 + n + 13)));
        }
    }
    let mut value = DataRef::Empty;
    loop {
        let Some((tok, after)) = scan::next(buf, at)? else {
            return Ok(None);
        };
        at = after;
        match tok {
            Tok::End { name } if name == cell => return Ok(Some((value, at))),
            Tok::End { .. } => return Err(Bad("end tag of another element in a cell")),
            Tok::Start { name, empty, .. } => match local(name) {
                b"is" => {
                    let mut text = String::new();
                    if !empty {
                        let Some(end) = scan::string_item(buf, at, name, &mut text, scratch)?
                        else {
                            return Ok(None);
                        };
                        at = end;
                    }
                    value = DataRef::String(text);
                }
                b"v" if matches!(t, Some(b"inlineStr" | b"is")) => {
                    value = DataRef::Empty;
                    if !empty {
                        let Some(end) = scan::skip_element(buf, at, name)? else {
                            return Ok(None);
                        };
                        at = end;
                    }
                }
                b"v" if matches!(t, None | Some(b"n" | b"s" | b"b" | b"e")) => {
                    if empty {
                        value = DataRef::Empty;
                        continue;
                    }
                    let Some((first, after)) = scan::next(buf, at)? else {
                        return Ok(None);
                    };
                    match first {
                        Tok::End { name: end } if end == name => {
                            value = DataRef::Empty;
                            at = after;
                        }
                        Tok::Text(raw) => {
                            if memchr::memchr(b'&', raw).is_some() {
                                return Err(Bad("entity in a number cell"));
                            }
                            value = read_v(scan::utf8(raw)?, s, t, cx)?;
                            let Some(end) = scan::skip_element(buf, after, name)? else {
                                return Ok(None);
                            };
                            at = end;
                        }
                        _ => return Err(Bad("markup inside <v>")),
                    }
                }
                b"v" => {
                    let mut text = String::new();
                    if !empty {
                        loop {
                            let Some((tok, after)) = scan::next(buf, at)? else {
                                return Ok(None);
                            };
                            at = after;
                            match tok {
                                Tok::Text(raw) => scan::push_text(&mut text, raw)?,
                                Tok::End { name: end } if end == name => break,
                                Tok::Other => {}
                                _ => return Err(Bad("markup inside <v>")),
                            }
                        }
                    }
                    value = read_v(&text, s, t, cx)?;
                }
                b"f" => {
                    value = DataRef::Empty;
                    if !empty {
                        let Some(end) = scan::skip_element(buf, at, name)? else {
                            return Ok(None);
                        };
                        at = end;
                    }
                }
                _ => return Err(Bad("unexpected element in a cell")),
            },
            Tok::Text(raw) => scan::check_text(raw)?,
            Tok::CData(raw) => {
                scan::utf8(raw)?;
            }
            _ => {}
        }
    }
}

/// A `<v>` value by the cell's type and style, as calamine's `read_v` decides it.
fn read_v<'s>(
    v: &str,
    s: Option<&[u8]>,
    t: Option<&[u8]>,
    cx: &Context<'_, 's>,
) -> Scan<DataRef<'s>> {
    Ok(match t {
        Some(b"s") => {
            if v.is_empty() {
                return Ok(DataRef::Empty);
            }
            let i = atoi_simd::parse::<usize, true, false>(v.as_bytes()).unwrap_or(0);
            DataRef::SharedString(
                cx.sst
                    .get(i)
                    .ok_or(Bad("shared string index out of range"))?,
            )
        }
        Some(b"b") => {
            let b = v.trim();
            if b.is_empty() {
                DataRef::Empty
            } else if b == "0" || b.eq_ignore_ascii_case("false") {
                DataRef::Bool(false)
            } else if b == "1" || b.eq_ignore_ascii_case("true") {
                DataRef::Bool(true)
            } else {
                return Err(Bad("boolean cell value"));
            }
        }
        Some(b"d") => DataRef::DateTimeIso(v.to_string()),
        Some(b"e") => DataRef::Error(match v {
            "#DIV/0!" => CellErrorType::Div0,
            "#N/A" => CellErrorType::NA,
            "#NAME?" => CellErrorType::Name,
            "#NULL!" => CellErrorType::Null,
            "#NUM!" => CellErrorType::Num,
            "#REF!" => CellErrorType::Ref,
            "#VALUE!" => CellErrorType::Value,
            _ => return Err(Bad("unknown cell error")),
        }),
        Some(b"str") => DataRef::String(scan::unescape_excel(v).into_owned()),
        Some(b"n") | None => {
            if v.is_empty() {
                return Ok(DataRef::Empty);
            }
            match fast_float2::parse::<f64, _>(v.as_bytes()) {
                Ok(n) => {
                    let format = match s {
                        Some(s) => {
                            let id = atoi_simd::parse::<usize, true, false>(s).unwrap_or(0);
                            cx.formats.get(id).copied()
                        }
                        None => Some(NumFmt::Other),
                    };
                    match format {
                        Some(NumFmt::DateTime) => DataRef::DateTime(ExcelDateTime::new(
                            n,
                            ExcelDateTimeType::DateTime,
                            cx.is_1904,
                        )),
                        Some(NumFmt::TimeDelta) => DataRef::DateTime(ExcelDateTime::new(
                            n,
                            ExcelDateTimeType::TimeDelta,
                            cx.is_1904,
                        )),
                        _ => DataRef::Float(n),
                    }
                }
                Err(_) if t.is_none() => DataRef::String(v.to_string()),
                Err(_) => return Err(Bad("number cell not a number")),
            }
        }
        Some(_) => return Err(Bad("unknown cell type")),
    })
}

/// `A1`-style reference → zero-based (row, column if any).
fn parse_ref(r: &[u8]) -> Scan<(u32, Option<u32>)> {
    let mut i = 0;
    let mut col: u32 = 0;
    let mut row: u32 = 0;
    while i < r.len() {
        match r[i] {
            c @ (b'A'..=b'Z' | b'a'..=b'z') => {
                let digit = (c.to_ascii_uppercase() - b'A') as u32 + 1;
                col = col
                    .checked_mul(26)
                    .and_then(|v| v.checked_add(digit))
                    .ok_or(Bad("cell reference overflows"))?;
            }
            c @ b'0'..=b'9' => {
                row = (c - b'0') as u32;
                i += 1;
                break;
            }
            _ => return Err(Bad("bad cell reference")),
        }
        i += 1;
    }
    while i < r.len() {
        match r[i] {
            c @ b'0'..=b'9' => {
                row = row
                    .checked_mul(10)
                    .and_then(|v| v.checked_add((c - b'0') as u32))
                    .ok_or(Bad("cell reference overflows"))?;
            }
            _ => return Err(Bad("bad cell reference")),
        }
        i += 1;
    }
    let row = row
        .checked_sub(1)
        .ok_or(Bad("cell reference without row"))?;
    Ok((row, col.checked_sub(1)))
}

fn row_of(r: &[u8]) -> Scan<u32> {
    parse_ref(r).map(|(row, _)| row)
}

fn cell_ref(r: &[u8]) -> Scan<(u32, u32)> {
    match parse_ref(r)? {
        (row, Some(col)) => Ok((row, col)),
        _ => Err(Bad("cell reference without column")),
    }
}

fn dimension(r: &[u8]) -> Scan<()> {
    let parts = r.split(|b| *b == b':').collect::<Vec<_>>();
    if parts.is_empty() || parts.len() > 2 {
        return Err(Bad("bad dimension"));
    }
    let cells = parts
        .iter()
        .map(|p| cell_ref(p))
        .collect::<Scan<Vec<_>>>()?;
    if let [a, b] = cells.as_slice()
        && (b.0 < a.0 || b.1 < a.1)
    {
        // calamine subtracts the corners and would overflow.
        return Err(Bad("dimension ends before it starts"));
    }
    Ok(())
}
