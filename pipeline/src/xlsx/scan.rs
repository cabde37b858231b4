//! A hand-written XML tokenizer for the parts of an xlsx the fast reader reads, and the
//! text rules calamine applies to them (entities, XML 1.0 line ends, `_xHHHH_` escapes,
//! rich and phonetic runs), so that every value comes out exactly as calamine gives it.
//!
//! Anything it does not expect is [`Bad`]: the caller then hands the file to calamine,
//! which gives the verdict it always gave.

use std::borrow::Cow;

/// Something the fast path does not cover; the reason is logged with the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub &'static str);

pub type Scan<T> = Result<T, Bad>;

/// One token of XML, borrowing the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tok<'b> {
    /// `<name attrs>` or, with `empty`, `<name attrs/>`.
    Start {
        name: &'b [u8],
        attrs: &'b [u8],
        empty: bool,
    },
    End {
        name: &'b [u8],
    },
    /// Character data as written (entities not yet resolved).
    Text(&'b [u8]),
    /// The content of a CDATA section.
    CData(&'b [u8]),
    /// A comment or a processing instruction (and the XML declaration).
    Other,
}

/// The next token at `at`, and where the one after it starts; `None` when the buffer
/// ends inside the token (more bytes are needed).
#[inline]
pub fn next(buf: &[u8], at: usize) -> Scan<Option<(Tok<'_>, usize)>> {
    let rest = &buf[at..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest[0] != b'<' {
        return Ok(memchr::memchr(b'<', rest).map(|n| (Tok::Text(&rest[..n]), at + n)));
    }
    match rest.get(1) {
        None => Ok(None),
        Some(b'/') => {
            let Some(gt) = memchr::memchr(b'>', rest) else {
                return Ok(None);
            };
            // White space may follow the name, not precede it.
            let name = rest[2..gt].trim_ascii_end();
            Ok(Some((Tok::End { name }, at + gt + 1)))
        }
        Some(b'?') => Ok(find(rest, b"?>").map(|n| (Tok::Other, at + n + 2))),
        Some(b'!') => {
            if rest.len() < 9 {
                // Long enough to tell a comment from CDATA from a declaration.
                return Ok(None);
            }
            if rest.starts_with(b"<!--") {
                Ok(find(&rest[4..], b"-->").map(|n| (Tok::Other, at + n + 7)))
            } else if rest.starts_with(b"<![CDATA[") {
                Ok(find(&rest[9..], b"]]>").map(|n| (Tok::CData(&rest[9..9 + n]), at + 9 + n + 3)))
            } else {
                // A DOCTYPE may declare entities: calamine's parser decides.
                Err(Bad("DOCTYPE"))
            }
        }
        Some(_) => {
            // A start tag: `>` inside a quoted attribute value does not end it.
            let mut i = 1;
            loop {
                let Some(k) = memchr::memchr3(b'>', b'"', b'\'', &rest[i..]) else {
                    return Ok(None);
                };
                i += k;
                let quote = rest[i];
                if quote == b'>' {
                    break;
                }
                let Some(close) = memchr::memchr(quote, &rest[i + 1..]) else {
                    return Ok(None);
                };
                i += close + 2;
            }
            let inner = &rest[1..i];
            let (inner, empty) = match inner.strip_suffix(b"/") {
                Some(s) => (s, true),
                None => (inner, false),
            };
            let name_end = inner
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(inner.len());
            Ok(Some((
                Tok::Start {
                    name: &inner[..name_end],
                    attrs: &inner[name_end..],
                    empty,
                },
                at + i + 1,
            )))
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// The open elements, so that every end tag closes the element opened last (the XML
/// parser calamine uses refuses an end tag with nothing open; this is stricter, and what
/// it refuses goes to calamine). Names live in one buffer: no allocation per element.
#[derive(Debug, Default)]
pub struct Nesting {
    names: Vec<u8>,
    ends: Vec<usize>,
}

impl Nesting {
    /// Takes a token in document order.
    #[inline]
    pub fn see(&mut self, tok: &Tok<'_>) -> Scan<()> {
        match *tok {
            Tok::Start {
                name, empty: false, ..
            } => {
                self.names.extend_from_slice(name);
                self.ends.push(self.names.len());
            }
            Tok::End { name } => {
                let end = self.ends.pop().ok_or(Bad("end tag with nothing open"))?;
                let start = self.ends.last().copied().unwrap_or(0);
                if &self.names[start..end] != name {
                    return Err(Bad("end tag of another element"));
                }
                self.names.truncate(start);
            }
            _ => {}
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// UTF-8 checked chunk by chunk (a character may be split between two chunks).
#[derive(Debug, Default)]
pub struct Utf8Check {
    pending: Vec<u8>,
}

impl Utf8Check {
    /// False once the bytes so far cannot be UTF-8.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut rest = chunk;
        while !self.pending.is_empty() {
            let Some((&b, tail)) = rest.split_first() else {
                return true;
            };
            self.pending.push(b);
            rest = tail;
            match std::str::from_utf8(&self.pending) {
                Ok(_) => self.pending.clear(),
                Err(e) if e.error_len().is_none() && self.pending.len() < 4 => {}
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                self.pending.extend_from_slice(&rest[e.valid_up_to()..]);
                true
            }
            Err(_) => false,
        }
    }

    /// True when the part did not end inside a character.
    pub fn finish(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The part of a qualified name after its prefix.
#[inline]
pub fn local(name: &[u8]) -> &[u8] {
    // Names are a few bytes long: a plain loop beats a vectorised search.
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Attributes as calamine's raw iterator reads them: `key = "value"`, the value as
/// written. A malformed list is [`Bad`].
pub struct Attrs<'b> {
    raw: &'b [u8],
    pos: usize,
}

pub fn attrs(raw: &[u8]) -> Attrs<'_> {
    Attrs { raw, pos: 0 }
}

impl<'b> Iterator for Attrs<'b> {
    type Item = Scan<(&'b [u8], &'b [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.raw;
        let mut p = self.pos;
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        if p >= b.len() {
            self.pos = p;
            return None;
        }
        let key_start = p;
        while p < b.len() && b[p] != b'=' {
            p += 1;
        }
        if p >= b.len() {
            self.pos = b.len();
            return Some(Err(Bad("attribute without =")));
        }
        let key = b[key_start..p].trim_ascii_end();
        p += 1;
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        let quote = match b.get(p) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                self.pos = b.len();
                return Some(Err(Bad("unquoted attribute")));
            }
        };
        p += 1;
        let start = p;
        while p < b.len() && b[p] != quote {
            p += 1;
        }
        let val = &b[start..p];
        if p < b.len() {
            p += 1;
        }
        self.pos = p;
        Some(Ok((key, val)))
    }
}

/// The first attribute named `key`, as calamine's `raw_attr` finds it.
pub fn attr<'b>(raw: &'b [u8], key: &[u8]) -> Scan<Option<&'b [u8]>> {
    for a in attrs(raw) {
        let (k, v) = a?;
        if k == key {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The attributes named `keys`, each as written; a key given twice is [`Bad`] (calamine
/// would take one or the other depending on the order).
pub fn get_attrs<'b, const N: usize>(
    raw: &'b [u8],
    keys: [&[u8]; N],
) -> Scan<[Option<&'b [u8]>; N]> {
    let mut out = [None; N];
    for a in attrs(raw) {
        let (k, v) = a?;
        if let Some(i) = keys.iter().position(|key| *key == k) {
            if out[i].is_some() {
                return Err(Bad("attribute given twice"));
            }
            out[i] = Some(v);
        }
    }
    Ok(out)
}

/// A cell's `r`, `s` and `t` attributes (the hot path of [`get_attrs`]).
#[inline]
pub fn cell_attrs(raw: &[u8]) -> Scan<[Option<&[u8]>; 3]> {
    let mut out: [Option<&[u8]>; 3] = [None; 3];
    for a in attrs(raw) {
        let (k, v) = a?;
        let i = match k {
            b"r" => 0,
            b"s" => 1,
            b"t" => 2,
            _ => continue,
        };
        if out[i].replace(v).is_some() {
            return Err(Bad("attribute given twice"));
        }
    }
    Ok(out)
}

/// `s` without the ASCII white space (space, tab, CR, LF) calamine trims from a `<t>`
/// that does not preserve space.
#[inline]
pub fn trim_xml_space(s: &str) -> &str {
    let b = s.as_bytes();
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |i| i + 1);
    // Both ends are next to ASCII bytes, hence character boundaries.
    &s[start..end]
}

/// Text that is not part of any value must still be well formed: UTF-8, and every
/// entity closed and known.
pub fn check_text(t: &[u8]) -> Scan<()> {
    if t.contains(&b'&') {
        push_text(&mut String::new(), t)
    } else {
        utf8(t).map(|_| ())
    }
}

/// Every attribute of a start tag well formed (where calamine reads only some).
pub fn check_attrs(raw: &[u8]) -> Scan<()> {
    attrs(raw).try_for_each(|a| a.map(|_| ()))
}

/// `s` as UTF-8, or [`Bad`].
#[inline]
pub fn utf8(s: &[u8]) -> Scan<&str> {
    std::str::from_utf8(s).map_err(|_| Bad("not UTF-8"))
}

/// Appends character data with its entities resolved and each run between entities
/// given XML 1.0 line ends (`\r\n` and `\r` become `\n`), as the XML parser does.
pub fn push_text(out: &mut String, raw: &[u8]) -> Scan<()> {
    if !raw.iter().any(|&b| b == b'&' || b == b'\r') {
        out.push_str(utf8(raw)?);
        return Ok(());
    }
    let mut rest = raw;
    loop {
        let amp = memchr::memchr(b'&', rest);
        let run = utf8(&rest[..amp.unwrap_or(rest.len())])?;
        push_eol(out, run);
        let Some(amp) = amp else { return Ok(()) };
        let after = &rest[amp + 1..];
        let semi = memchr::memchr(b';', after).ok_or(Bad("unterminated entity"))?;
        push_entity(out, &after[..semi])?;
        rest = &after[semi + 1..];
    }
}

/// XML 1.0 line-end handling of one run of text.
pub fn push_eol(out: &mut String, run: &str) {
    let bytes = run.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\r', &bytes[from..]) {
        let i = from + i;
        out.push_str(&run[from..i]);
        out.push('\n');
        from = if bytes.get(i + 1) == Some(&b'\n') {
            i + 2
        } else {
            i + 1
        };
    }
    out.push_str(&run[from..]);
}

/// One entity (`amp`, `#65`, `#x41`), as the XML parser resolves it.
fn push_entity(out: &mut String, name: &[u8]) -> Scan<()> {
    out.push(match name {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        _ => {
            let num = name.strip_prefix(b"#").ok_or(Bad("unknown entity"))?;
            let (digits, radix) = match num.strip_prefix(b"x") {
                Some(h) => (h, 16),
                None => (num, 10),
            };
            if matches!(digits.first(), Some(b'+' | b'-')) {
                return Err(Bad("signed character reference"));
            }
            let code = u32::from_str_radix(utf8(digits)?, radix)
                .map_err(|_| Bad("bad character reference"))?;
            if code == 0 {
                return Err(Bad("character reference to NUL"));
            }
            char::from_u32(code).ok_or(Bad("character reference out of range"))?
        }
    });
    Ok(())
}

/// An attribute value with its entities resolved (sheet names, number formats).
pub fn decode_attr(raw: &[u8]) -> Scan<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        let amp = memchr::memchr(b'&', rest);
        out.push_str(utf8(&rest[..amp.unwrap_or(rest.len())])?);
        let Some(amp) = amp else { return Ok(out) };
        let after = &rest[amp + 1..];
        let semi = memchr::memchr(b';', after).ok_or(Bad("unterminated entity"))?;
        push_entity(&mut out, &after[..semi])?;
        rest = &after[semi + 1..];
    }
}

/// Excel's own escapes: `_xHHHH_` is one UTF-16 unit; a lone surrogate becomes U+FFFD.
pub fn unescape_excel(s: &str) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'_') {
        return Cow::Borrowed(s);
    }
    let Some((mut index, mut unit)) = find_escape(s, 0) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    loop {
        out.push_str(&s[copied..index]);
        index += 7;
        match unit {
            0xD800..=0xDBFF => match parse_escape(s, index) {
                Some(low @ 0xDC00..=0xDFFF) => {
                    let cp =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                    index += 7;
                }
                _ => out.push(char::REPLACEMENT_CHARACTER),
            },
            0xDC00..=0xDFFF => out.push(char::REPLACEMENT_CHARACTER),
            _ => out.push(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER)),
        }
        copied = index;
        match find_escape(s, index) {
            Some(next) => (index, unit) = next,
            None => break,
        }
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

fn find_escape(s: &str, mut from: usize) -> Option<(usize, u16)> {
    while let Some(off) = memchr::memchr(b'_', &s.as_bytes()[from..]) {
        let i = from + off;
        if let Some(unit) = parse_escape(s, i) {
            return Some((i, unit));
        }
        from = i + 1;
    }
    None
}

fn parse_escape(s: &str, i: usize) -> Option<u16> {
    let b = s.as_bytes().get(i..i + 7)?;
    if b[0] != b'_' || b[1] != b'x' || b[6] != b'_' || !b[2..6].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(&b[2..6]).ok()?, 16).ok()
}

/// A string item (`<si>` of the shared strings, `<is>` of a cell) from just after its
/// start tag, appended to `out`: plain or rich runs concatenated, phonetic runs left out,
/// each `<t>` trimmed of ASCII white space unless `xml:space="preserve"`. Returns where
/// the item's end tag ends, or `None` (and `out` as it was) when the buffer ends first.
/// `scratch` is a buffer the caller keeps, so an item costs no allocation of its own.
pub fn string_item(
    buf: &[u8],
    mut at: usize,
    closing: &[u8],
    out: &mut String,
    scratch: &mut String,
) -> Scan<Option<usize>> {
    let before = out.len();
    let mut phonetic = false;
    let mut nesting = Nesting::default();
    loop {
        let Some((tok, after)) = next(buf, at)? else {
            out.truncate(before);
            return Ok(None);
        };
        at = after;
        if matches!(tok, Tok::End { name } if name == closing) && nesting.is_empty() {
            return Ok(Some(at));
        }
        if matches!(tok, Tok::Start { name, .. } if name == closing) {
            // calamine's parser would end the item at the inner element's end.
            return Err(Bad("string item inside a string item"));
        }
        if !matches!(tok, Tok::Start { name, .. } if local(name) == b"t" && !phonetic) {
            nesting.see(&tok)?;
        }
        match tok {
            Tok::Start { name, empty, .. } if local(name) == b"rPh" => phonetic = !empty,
            Tok::End { name } if local(name) == b"rPh" => phonetic = false,
            Tok::Start {
                name,
                attrs: raw,
                empty,
            } if local(name) == b"t" && !phonetic => {
                let preserve = attr(raw, b"xml:space")? == Some(b"preserve".as_slice());
                scratch.clear();
                if !empty {
                    loop {
                        let Some((tok, after)) = next(buf, at)? else {
                            out.truncate(before);
                            return Ok(None);
                        };
                        at = after;
                        match tok {
                            Tok::Text(t) => push_text(scratch, t)?,
                            Tok::CData(t) => push_eol(scratch, utf8(t)?),
                            Tok::End { name: end } if end == name => break,
                            Tok::Other => {}
                            _ => return Err(Bad("markup inside <t>")),
                        }
                    }
                }
                let text = if preserve {
                    scratch.as_str()
                } else {
                    trim_xml_space(scratch)
                };
                out.push_str(&unescape_excel(text));
            }
            Tok::Text(t) => check_text(t)?,
            Tok::CData(t) => {
                utf8(t)?;
            }
            Tok::Start { attrs: raw, .. } => check_attrs(raw)?,
            _ => {}
        }
    }
}

/// Skips to the end of the element whose start tag ended at `at` (same-named elements
/// nested inside are counted); `None` when the buffer ends first.
pub fn skip_element(buf: &[u8], mut at: usize, name: &[u8]) -> Scan<Option<usize>> {
    let mut nesting = Nesting::default();
    loop {
        let Some((tok, after)) = next(buf, at)? else {
            return Ok(None);
        };
        at = after;
        if matches!(tok, Tok::End { name: n } if n == name) && nesting.is_empty() {
            return Ok(Some(at));
        }
        nesting.see(&tok)?;
        match tok {
            Tok::Text(t) => check_text(t)?,
            Tok::CData(t) => {
                utf8(t)?;
            }
            Tok::Start { attrs: raw, .. } => check_attrs(raw)?,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_respect_quotes_and_sections() {
        let xml = br#"<c r="A1" t='x>y'/><v>1&amp;2</v><![CDATA[a<b]]><!-- c --><?pi x?>"#;
        let mut at = 0;
        let mut seen = Vec::new();
        while let Some((t, after)) = next(xml, at).unwrap() {
            seen.push(t);
            at = after;
        }
        assert_eq!(
            seen,
            vec![
                Tok::Start {
                    name: b"c",
                    attrs: br#" r="A1" t='x>y'"#,
                    empty: true
                },
                Tok::Start {
                    name: b"v",
                    attrs: b"",
                    empty: false
                },
                Tok::Text(b"1&amp;2"),
                Tok::End { name: b"v" },
                Tok::CData(b"a<b"),
                Tok::Other,
                Tok::Other,
            ]
        );
        // A token cut by the end of the buffer asks for more bytes.
        assert_eq!(next(b"<c r=\"A1", 0).unwrap(), None);
        assert_eq!(next(b"abc", 0).unwrap(), None);
    }

    #[test]
    fn text_rules_match_the_xml_parser_and_excel() {
        let mut s = String::new();
        push_text(&mut s, b"a\r\nb\rc&lt;&#x41;&#66;").unwrap();
        assert_eq!(s, "a\nb\nc<AB");
        assert!(push_text(&mut String::new(), b"&nbsp;").is_err());
        assert!(push_text(&mut String::new(), b"&#0;").is_err());
        assert_eq!(unescape_excel("_x0041__x005F_x0041_"), "A_x0041_");
        assert_eq!(unescape_excel("_xD83D__xDCF7_"), "\u{1F4F7}");
        assert_eq!(unescape_excel("_xD83D_"), "\u{FFFD}");
        for t in [" a b ", "\t\r\n中\n", "   ", "", "\u{A0}x\u{A0}"] {
            assert_eq!(
                trim_xml_space(t),
                t.trim_matches([' ', '\t', '\r', '\n']),
                "{t:?}"
            );
        }
    }

    #[test]
    fn string_items_join_runs_and_skip_phonetics() {
        let xml =
            "<r><t xml:space=\"preserve\"> a </t></r><r><t> b </t></r><rPh><t>ふ</t></rPh></si>";
        let (mut s, mut scratch) = (String::from("x"), String::new());
        let at = string_item(xml.as_bytes(), 0, b"si", &mut s, &mut scratch).unwrap();
        assert_eq!((s.as_str(), at), ("x a b", Some(xml.len())));
        // Cut short: more bytes are needed and nothing is appended.
        let at = string_item(&xml.as_bytes()[..30], 0, b"si", &mut s, &mut scratch).unwrap();
        assert_eq!((s.as_str(), at), ("x a b", None));
    }
}
