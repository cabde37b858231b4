//! The small parts of an xlsx the fast reader needs before the sheet: package and
//! workbook relationships, the sheet list, the date epoch and which cell styles are
//! dates — decided by the same rules calamine applies, so cells get the same types.

use std::collections::HashMap;

use super::scan::{self, Bad, Scan, Tok, attr, attrs, decode_attr, get_attrs, local};

/// How a number in a cell is shown, as far as its type goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumFmt {
    Other,
    DateTime,
    TimeDelta,
}

/// A sheet as the workbook lists it.
#[derive(Debug, Clone)]
pub struct SheetEntry {
    pub name: String,
    pub visible: bool,
    pub worksheet: bool,
    /// The part's path inside the zip, as calamine builds it.
    pub path: String,
}

/// Tokens of a whole (small) part, in order.
fn tokens(xml: &[u8]) -> impl Iterator<Item = Scan<Tok<'_>>> {
    let mut at = 0;
    let mut failed = false;
    let mut nesting = scan::Nesting::default();
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        match scan::next(xml, at) {
            Ok(Some((t, after))) => {
                at = after;
                let checked = nesting.see(&t).and_then(|()| match t {
                    Tok::Start { attrs: raw, .. } => scan::check_attrs(raw),
                    Tok::Text(text) => scan::check_text(text),
                    _ => Ok(()),
                });
                if let Err(e) = checked {
                    failed = true;
                    return Some(Err(e));
                }
                Some(Ok(t))
            }
            Ok(None) if xml[at..].iter().all(u8::is_ascii_whitespace) => None,
            Ok(None) => {
                failed = true;
                Some(Err(Bad("part ends inside a token")))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// `_rels/.rels`: the folder and file name of the workbook part.
pub fn package_rels(xml: &[u8]) -> Scan<(String, String)> {
    let mut target = None;
    let mut inside = false;
    for t in tokens(xml) {
        match t? {
            Tok::Start { name, .. } if local(name) == b"Relationships" => inside = true,
            Tok::Start {
                name, attrs: raw, ..
            } if inside && local(name) == b"Relationship" => {
                let [typ, tgt] = get_attrs(raw, [b"Type", b"Target"])?;
                if typ.is_some_and(|t| t.ends_with(b"/relationships/officeDocument"))
                    && let Some(t) = tgt
                {
                    target = Some(decode_attr(t)?);
                }
            }
            Tok::End { name } if inside && local(name) == b"Relationships" => {
                let target = target.ok_or(Bad("no officeDocument relationship"))?;
                let (dir, file) = match target.rfind('/') {
                    Some(i) => target.split_at(i + 1),
                    None => ("", target.as_str()),
                };
                let dir = dir.strip_prefix('/').unwrap_or(dir).to_string();
                let file = if file.is_empty() {
                    "workbook.xml"
                } else {
                    file
                };
                return Ok((dir, file.to_string()));
            }
            _ => {}
        }
    }
    Err(Bad("package relationships end early"))
}

/// The workbook's relationships: id → (target as written, type).
pub fn workbook_rels(xml: &[u8]) -> Scan<HashMap<String, (String, String)>> {
    let mut rels = HashMap::new();
    for t in tokens(xml) {
        match t? {
            Tok::Start {
                name, attrs: raw, ..
            } if local(name) == b"Relationship" => {
                let [id, typ, target] = get_attrs(raw, [b"Id", b"Type", b"Target"])?;
                if let Some(id) = id {
                    let s =
                        |v: Option<&[u8]>| scan::utf8(v.unwrap_or_default()).map(str::to_string);
                    rels.insert(scan::utf8(id)?.to_string(), (s(target)?, s(typ)?));
                }
            }
            Tok::End { name } if local(name) == b"Relationships" => return Ok(rels),
            _ => {}
        }
    }
    Err(Bad("workbook relationships end early"))
}

/// The sheet list and the 1904 flag of `workbook.xml`.
pub fn workbook(
    xml: &[u8],
    xl_path: &str,
    rels: &HashMap<String, (String, String)>,
) -> Scan<(Vec<SheetEntry>, bool)> {
    let mut sheets = Vec::new();
    let mut is_1904 = false;
    for t in tokens(xml) {
        match t? {
            Tok::Start {
                name, attrs: raw, ..
            } if local(name) == b"sheet" => {
                let mut sheet_name = String::new();
                let mut rel_id: &[u8] = b"";
                let mut visible = true;
                for a in attrs(raw) {
                    let (k, v) = a?;
                    match k {
                        b"name" => sheet_name = decode_attr(v)?,
                        b"state" => {
                            visible = match v {
                                b"visible" => true,
                                b"hidden" | b"veryHidden" => false,
                                _ => return Err(Bad("unknown sheet state")),
                            }
                        }
                        k if local(k) == b"id" => rel_id = v,
                        _ => {}
                    }
                }
                let (target, typ) = rels
                    .get(scan::utf8(rel_id)?)
                    .ok_or(Bad("sheet relationship missing"))?;
                let path = match target.strip_prefix('/') {
                    Some(abs) => abs.to_string(),
                    None => format!("{xl_path}{target}"),
                };
                let worksheet = match typ.rsplit('/').next() {
                    Some("worksheet") => true,
                    Some("chartsheet" | "dialogsheet") => false,
                    _ => return Err(Bad("unknown sheet type")),
                };
                sheets.push(SheetEntry {
                    name: sheet_name,
                    visible,
                    worksheet,
                    path,
                });
            }
            Tok::Start {
                name, attrs: raw, ..
            } if local(name) == b"workbookPr" => {
                if let Some(v) = attr(raw, b"date1904")? {
                    is_1904 = v == b"1" || v == b"true";
                }
            }
            Tok::End { name } if local(name) == b"workbook" => return Ok((sheets, is_1904)),
            _ => {}
        }
    }
    Err(Bad("workbook ends early"))
}

/// The number format of every cell style (`cellXfs`), in order.
pub fn styles(xml: &[u8]) -> Scan<Vec<NumFmt>> {
    let mut custom: HashMap<Vec<u8>, String> = HashMap::new();
    let mut formats = Vec::new();
    let mut in_numfmts = false;
    let mut in_xfs = false;
    for t in tokens(xml) {
        match t? {
            Tok::Start { name, .. } if local(name) == b"numFmts" => in_numfmts = true,
            Tok::End { name } if local(name) == b"numFmts" => in_numfmts = false,
            Tok::Start {
                name, attrs: raw, ..
            } if in_numfmts && local(name) == b"numFmt" => {
                let [id, code] = get_attrs(raw, [b"numFmtId", b"formatCode"])?;
                if let (Some(id), Some(code)) = (id, code) {
                    custom.insert(id.to_vec(), decode_attr(code)?);
                }
            }
            Tok::Start { name, .. } if local(name) == b"cellXfs" => in_xfs = true,
            Tok::End { name } if local(name) == b"cellXfs" => in_xfs = false,
            Tok::Start {
                name, attrs: raw, ..
            } if in_xfs && local(name) == b"xf" => {
                formats.push(match attr(raw, b"numFmtId")? {
                    None => NumFmt::Other,
                    Some(id) => match custom.get(id) {
                        Some(code) => custom_format(code),
                        None => builtin_format(id),
                    },
                });
            }
            Tok::End { name } if local(name) == b"styleSheet" => return Ok(formats),
            _ => {}
        }
    }
    Err(Bad("styles end early"))
}

/// Whether a custom format code shows a date, a duration or neither: its first section
/// holds a date or time letter outside quotes, brackets and escapes (`[h]` alone is a
/// duration).
pub fn custom_format(code: &str) -> NumFmt {
    let mut escaped = false;
    let mut quoted = false;
    let mut brackets = 0u8;
    let mut prev = ' ';
    let mut elapsed = false;
    let mut am = false;
    for c in code.chars() {
        if escaped {
            escaped = false;
        } else if matches!(c, '_' | '\\' | '*') {
            escaped = true;
        } else if quoted {
            if c == '"' {
                quoted = false;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ';' {
            return NumFmt::Other;
        } else if c == '[' {
            brackets = brackets.saturating_add(1);
        } else if c == ']' && brackets == 1 && elapsed {
            return NumFmt::TimeDelta;
        } else if c == ']' {
            brackets = brackets.saturating_sub(1);
        } else if matches!(c, 'a' | 'A') && !am && brackets == 0 {
            am = true;
        } else if brackets == 0
            && if am {
                matches!(c, 'p' | 'm' | '/' | 'P' | 'M')
            } else {
                matches!(c, 'd' | 'm' | 'h' | 'y' | 's' | 'D' | 'M' | 'H' | 'Y' | 'S')
            }
        {
            // A date or time letter (after an `A`, the rest of `AM/PM`).
            return NumFmt::DateTime;
        } else if !(elapsed && c.eq_ignore_ascii_case(&prev)) {
            elapsed = prev == '[' && matches!(c, 'm' | 'h' | 's' | 'M' | 'H' | 'S');
        }
        prev = c;
    }
    NumFmt::Other
}

/// The built-in number formats that show dates (14–22, 27–36, 45, 47, 50–58) or a
/// duration (46).
pub fn builtin_format(id: &[u8]) -> NumFmt {
    match id {
        b"14" | b"15" | b"16" | b"17" | b"18" | b"19" | b"20" | b"21" | b"22" | b"45" | b"47"
        | b"27" | b"28" | b"29" | b"30" | b"31" | b"32" | b"33" | b"34" | b"35" | b"36" | b"50"
        | b"51" | b"52" | b"53" | b"54" | b"55" | b"56" | b"57" | b"58" => NumFmt::DateTime,
        b"46" => NumFmt::TimeDelta,
        _ => NumFmt::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_codes_are_typed_as_calamine_types_them() {
        let table = [
            ("yyyy-mm-dd", NumFmt::DateTime),
            ("[$-F800]dddd, mmmm dd, yyyy", NumFmt::DateTime),
            ("0.00", NumFmt::Other),
            ("\"days\" 0", NumFmt::Other),
            ("[h]:mm:ss", NumFmt::TimeDelta),
            ("[Red]0.00", NumFmt::Other),
            ("0;[Red]-0;yyyy", NumFmt::Other),
            ("AM/PM", NumFmt::DateTime),
            ("\\d0", NumFmt::Other),
            ("@", NumFmt::Other),
            ("General", NumFmt::Other),
        ];
        for (code, want) in table {
            assert_eq!(custom_format(code), want, "{code}");
        }
        assert_eq!(builtin_format(b"14"), NumFmt::DateTime);
        assert_eq!(builtin_format(b"46"), NumFmt::TimeDelta);
        assert_eq!(builtin_format(b"49"), NumFmt::Other);
    }
}
