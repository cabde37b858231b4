//! The fast xlsx reader holds every cell equal to calamine's cell reader, value and type:
//! on the sample data, the robustness corpus, generated rosters, hand-written sheets with
//! every construct it reads, and random cell contents. Where it does not cover a file it
//! says so, and the file is read by calamine.

use std::io::{Cursor, Write};

use calamine::{Data, Reader, SheetType, Xlsx};
use pipeline::read::fast_xlsx_cells;
use rust_xlsxwriter::{Format, FormatScript, Workbook};

type Sheets = Vec<(String, Vec<(u32, u32, Data)>)>;

/// Every worksheet as calamine's cell reader yields it.
fn calamine_cells(bytes: &[u8]) -> Result<Sheets, String> {
    let mut wb = Xlsx::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let names: Vec<String> = wb
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let mut out = Vec::new();
    for name in names {
        let mut reader = wb
            .worksheet_cells_reader(&name)
            .map_err(|e| e.to_string())?;
        let mut cells = Vec::new();
        while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
            let (r, c) = cell.get_position();
            cells.push((r, c, Data::from(cell.get_value().clone())));
        }
        out.push((name, cells));
    }
    Ok(out)
}

/// Cells compared by value and type (`Debug` shows both, and a NaN equals itself).
fn shown(sheets: &Sheets) -> Vec<String> {
    sheets
        .iter()
        .flat_map(|(name, cells)| {
            cells
                .iter()
                .map(move |(r, c, v)| format!("{name}!{r},{c}={v:?}"))
        })
        .collect()
}

/// What happened to one file.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Both read it, cell for cell the same.
    Same(usize),
    /// The fast reader handed it to calamine, with this reason.
    Fallback(String),
    /// calamine cannot read it and neither does the fast reader.
    BothRefuse,
}

fn compare(label: &str, bytes: &[u8]) -> Verdict {
    let fast = fast_xlsx_cells(bytes);
    let slow = calamine_cells(bytes);
    match (fast, slow) {
        (Ok(f), Ok(c)) => {
            let (f, c) = (shown(&f), shown(&c));
            if f != c {
                let at = f
                    .iter()
                    .zip(&c)
                    .position(|(a, b)| a != b)
                    .unwrap_or(f.len().min(c.len()));
                panic!(
                    "{label}: the fast reader differs from calamine at cell {at} of {} / {}:\n fast: {:?}\n calamine: {:?}",
                    f.len(),
                    c.len(),
                    f.get(at),
                    c.get(at)
                );
            }
            Verdict::Same(f.len())
        }
        (Err(_), Err(_)) => Verdict::BothRefuse,
        (Err(reason), Ok(_)) if reason.starts_with("fallback") => Verdict::Fallback(reason),
        (Err(reason), Ok(_)) => {
            panic!("{label}: the fast reader refused a file calamine reads: {reason}")
        }
        (Ok(f), Err(e)) => panic!(
            "{label}: the fast reader read {} sheets of a file calamine refuses ({e})",
            f.len()
        ),
    }
}

#[test]
fn sample_data_is_read_cell_for_cell_as_calamine_reads_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xlsx") {
            let bytes = std::fs::read(&path).unwrap();
            match compare(&path.display().to_string(), &bytes) {
                Verdict::Same(n) => assert!(n > 20, "{}: {n} cells", path.display()),
                other => panic!("{}: {other:?}", path.display()),
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 3);
}

/// The corpus's xlsx files: the fast reader reads most of them itself, each exactly as
/// calamine does; the others it hands to calamine (never a different answer).
#[test]
fn the_corpus_is_read_cell_for_cell_as_calamine_reads_it_or_handed_to_calamine() {
    let mut same = 0;
    let mut fallbacks = Vec::new();
    let mut refused = 0;
    for path in crate::reading::corpus_files() {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match compare(&name, &bytes) {
            Verdict::Same(_) => same += 1,
            Verdict::Fallback(why) => fallbacks.push(format!("{name}: {why}")),
            Verdict::BothRefuse => refused += 1,
        }
    }
    eprintln!(
        "corpus: {same} read alike, {refused} refused by both, {} handed to calamine:\n{}",
        fallbacks.len(),
        fallbacks.join("\n")
    );
    // Most of the corpus's xlsx files are ordinary enough for the fast path.
    assert!(same >= 60, "only {same} read by the fast path");
}

/// A roster as the registry's users make them: dates in a date format, IDs typed as
/// numbers, shared or inline strings, rich text and strings that look like Excel escapes.
fn roster(shared: bool, rows: usize) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = if shared {
        wb.add_worksheet()
    } else {
        wb.add_worksheet_with_constant_memory().unwrap()
    };
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let time = Format::new().set_num_format("[h]:mm:ss");
    let red = Format::new().set_font_color(rust_xlsxwriter::Color::Red);
    let sup = Format::new().set_font_script(FormatScript::Superscript);
    for (c, h) in ["姓名", "公民身份号码", "入团年月", "备注", "时长"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=rows as u32 {
        ws.write_string(r, 0, format!("张三{r}")).unwrap();
        if r % 3 == 0 {
            ws.write_number(r, 1, 440308199901101504.0 + r as f64)
                .unwrap();
        } else {
            ws.write_string(r, 1, format!("44030819990110{r:04}"))
                .unwrap();
        }
        ws.write_number_with_format(r, 2, 42859.0 + r as f64, &date)
            .unwrap();
        match r % 5 {
            0 => ws
                .write_string(r, 3, "_x0041_ and _x005F_x0041_ & <b> \"q\"")
                .unwrap(),
            1 => ws
                .write_rich_string(r, 3, &[(&red, "红"), (&sup, "上"), (&Format::new(), " 常")])
                .unwrap(),
            2 => ws.write_string(r, 3, "  leading and trailing  ").unwrap(),
            3 => ws.write_string(r, 3, "line\r\nbreak\ttab").unwrap(),
            _ => ws.write_boolean(r, 3, r % 2 == 0).unwrap(),
        };
        ws.write_number_with_format(r, 4, 1.25 + r as f64, &time)
            .unwrap();
    }
    wb.save_to_buffer().unwrap()
}

/// The same zip with one part's text replaced.
fn patch(bytes: &[u8], part: &str, edit: impl Fn(&str) -> String) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut body).unwrap();
        if name == part {
            body = edit(std::str::from_utf8(&body).unwrap()).into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&body).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// The same zip with one byte sequence of its stored (uncompressed) parts replaced.
fn bytes_patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut body).unwrap();
        if let Some(at) = body.windows(from.len()).position(|w| w == from) {
            body.splice(at..at + from.len(), to.iter().copied());
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&body).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn in_1904(bytes: &[u8]) -> Vec<u8> {
    patch(bytes, "xl/workbook.xml", |x| {
        x.replacen("<workbookPr", "<workbookPr date1904=\"1\"", 1)
    })
}

#[test]
fn generated_rosters_in_both_epochs_with_shared_and_inline_strings_are_read_alike() {
    for shared in [true, false] {
        for epoch_1904 in [false, true] {
            let mut bytes = roster(shared, 400);
            if epoch_1904 {
                bytes = in_1904(&bytes);
            }
            let label = format!("shared={shared} 1904={epoch_1904}");
            assert_eq!(compare(&label, &bytes), Verdict::Same(5 * 401), "{label}");
        }
    }
    // The sample generator's own roster (inline strings, dates, numbers).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.xlsx");
    let opts = pipeline::sample::SampleOptions {
        rows: 3000,
        template: schemas::TemplateKind::Members,
        error_rate: 0.2,
        seed: 7,
        as_of: crate::helpers::as_of(),
    };
    pipeline::sample::generate(&opts, &path).unwrap();
    assert!(
        matches!(compare("sample", &std::fs::read(&path).unwrap()), Verdict::Same(n) if n > 30_000)
    );
}

/// A workbook from hand-written parts, for the constructs no writer library emits.
fn handmade(sheet_data: &str, sst: Option<&str>, extra_styles: &str) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut put = |name: &str, body: &str| {
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(body.as_bytes()).unwrap();
    };
    put(
        "[Content_Types].xml",
        r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
    );
    put(
        "_rels/.rels",
        r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    put(
        "xl/_rels/workbook.xml.rels",
        r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
    );
    put(
        "xl/workbook.xml",
        r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><workbookPr/><sheets><sheet name="A &amp; B" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    put(
        "xl/styles.xml",
        &format!(
            r#"<?xml version="1.0"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;"/><numFmt numFmtId="165" formatCode="0.00;[Red]-0.00"/></numFmts><cellXfs count="5"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="46"/><xf numFmtId="14"><alignment horizontal="left"/></xf>{extra_styles}</cellXfs></styleSheet>"#
        ),
    );
    if let Some(sst) = sst {
        put(
            "xl/sharedStrings.xml",
            &format!(
                r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{sst}</sst>"#
            ),
        );
    }
    put(
        "xl/worksheets/sheet1.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:H9"/><sheetData>{sheet_data}</sheetData><mergeCells count="0"/></worksheet>"#
        ),
    );
    out.finish().unwrap().into_inner()
}

#[test]
fn every_construct_the_fast_reader_covers_reads_as_calamine_reads_it() {
    let sst = concat!(
        "<si><t>plain</t></si>",
        "<si><t xml:space=\"preserve\">  kept  </t></si>",
        "<si><t>\n trimmed \n</t></si>",
        "<si><r><rPr><b/></rPr><t>ri</t></r><r><t xml:space=\"preserve\">ch </t></r><rPh sb=\"0\" eb=\"1\"><t>ふりがな</t></rPh><phoneticPr fontId=\"1\"/></si>",
        "<si/>",
        "<si><t>&lt;a&gt; &amp; &quot;&apos; &#x4E2D;&#25991;</t></si>",
        "<si><t>_x0041__x000D__x005F_x0041_ _xD83D__xDE00_</t></si>",
        "<si><t><![CDATA[<raw> & text]]></t></si>",
        "<si><t>a\r\nb\rc</t></si>",
        "<si><t/></si>",
    );
    let rows = concat!(
        // Shared strings, every one.
        "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c><c r=\"C1\" t=\"s\"><v>2</v></c><c r=\"D1\" t=\"s\"><v>3</v></c><c r=\"E1\" t=\"s\"><v>4</v></c><c r=\"F1\" t=\"s\"><v>5</v></c><c r=\"G1\" t=\"s\"><v>6</v></c><c r=\"H1\" t=\"s\"><v>7</v></c><c r=\"I1\" t=\"s\"><v>8</v></c><c r=\"J1\" t=\"s\"><v>9</v></c><c r=\"K1\" t=\"s\"><v></v></c></row>",
        // Numbers: plain, custom date, custom non-date, duration, built-in date, no style,
        // an untyped text that is no number, an ID typed as a number.
        "<row r=\"2\"><c r=\"A2\"><v>42</v></c><c r=\"B2\" s=\"1\"><v>42859</v></c><c r=\"C2\" s=\"2\" t=\"n\"><v>-1.5</v></c><c r=\"D2\" s=\"3\"><v>1.25</v></c><c r=\"E2\" s=\"4\"><v>61</v></c><c r=\"F2\" s=\"99\"><v>7</v></c><c r=\"G2\"><v> 12 </v></c><c r=\"H2\"><v>4.4030819990110150E+17</v></c><c r=\"I2\"><v>1e308</v></c></row>",
        // Cells without references, after one with: the column counts on.
        "<row><c t=\"inlineStr\"><is><t>no ref</t></is></c><c r=\"D3\"><v>1</v></c><c><v>2</v></c><c t=\"b\"><v>1</v></c><c t=\"b\"><v>false</v></c></row>",
        // Formula cells: the cached value, or nothing when the formula comes last.
        "<row r=\"5\"><c r=\"A5\"><f>1+1</f><v>2</v></c><c r=\"B5\"><v>3</v><f>1+2</f></c><c r=\"C5\" t=\"str\"><f>\"a\"&amp;\"b\"</f><v>a&amp;b_x0041_\r\nz</v></c><c r=\"D5\" t=\"e\"><f>1/0</f><v>#DIV/0!</v></c><c r=\"E5\" t=\"d\"><v>2024-01-02T03:04:05</v></c><c r=\"F5\" t=\"str\"><v/></c><c r=\"G5\"><f t=\"shared\" ref=\"G5:G6\" si=\"0\">A1</f><v>9</v></c></row>",
        // Inline strings: rich, phonetic, empty, with a redundant <v>.
        "<row r=\"6\" spans=\"1:4\"><c r=\"A6\" t=\"inlineStr\"><is><r><t>in</t></r><r><t xml:space='preserve'>line </t></r></is></c><c r=\"B6\" t=\"inlineStr\"><is/></c><c r=\"C6\" t=\"inlineStr\"><v>ignored</v><is><t>kept</t></is></c><c r=\"D6\" t=\"inlineStr\"><is><t>x</t></is><v>also ignored</v></c><c r=\"E6\" s=\"1\"/><c r=\"F6\"></c></row>",
        // An empty row element, then a row far down; prefixed names; comments.
        "<row r=\"7\"/><!-- a comment --><x:row r=\"9\" xmlns:x=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><x:c r=\"B9\" t=\"s\"><x:v>0</x:v></x:c></x:row>",
    );
    let bytes = handmade(rows, Some(sst), "");
    // 11 + 9 + 5 + 7 + 6 + 1 cells.
    assert_eq!(compare("handmade", &bytes), Verdict::Same(39));
    assert_eq!(compare("1904", &in_1904(&bytes)), Verdict::Same(39));
    // No shared strings part at all.
    let bytes = handmade(
        "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>solo</t></is></c></row>",
        None,
        "",
    );
    assert_eq!(compare("no sst", &bytes), Verdict::Same(1));
    // An empty sheet.
    assert_eq!(compare("empty", &handmade("", None, "")), Verdict::Same(0));
}

/// What the fast path does not cover goes to calamine, and `read_roster` still gives
/// calamine's verdict.
#[test]
fn what_the_fast_reader_does_not_cover_is_handed_to_calamine() {
    let cases = [
        (
            "an unknown entity",
            "<row r=\"1\"><c r=\"A1\" t=\"str\"><v>&nbsp;</v></c></row>",
        ),
        (
            "an element calamine rejects",
            "<row r=\"1\"><c r=\"A1\"><extLst/></c></row>",
        ),
        (
            "an unknown cell type",
            "<row r=\"1\"><c r=\"A1\" t=\"zz\"><v>1</v></c></row>",
        ),
        (
            "a shared string out of range",
            "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>5</v></c></row>",
        ),
        (
            "a bad reference",
            "<row r=\"1\"><c r=\"1A\"><v>1</v></c></row>",
        ),
        (
            "an entity in a number",
            "<row r=\"1\"><c r=\"A1\"><v>&#49;</v></c></row>",
        ),
        (
            "markup in a value",
            "<row r=\"1\"><c r=\"A1\" t=\"str\"><v>a<b/>c</v></c></row>",
        ),
    ];
    let mut read_by_calamine = 0;
    for (what, rows) in cases {
        let bytes = handmade(rows, Some("<si><t>x</t></si>"), "");
        match fast_xlsx_cells(&bytes) {
            Err(why) if why.starts_with("fallback") => {}
            other => panic!("{what}: {other:?}"),
        }
        // Where calamine reads the file, its cells are the answer.
        read_by_calamine += usize::from(calamine_cells(&bytes).is_ok());
    }
    // The entity in a number and the markup in a value are read by calamine (as empty
    // and as "ac"); the others calamine refuses too.
    assert_eq!(read_by_calamine, 2);
    // Bytes that are not UTF-8, anywhere in the sheet.
    let bytes = patch(&roster(true, 5), "xl/worksheets/sheet1.xml", |x| {
        x.replacen("<sheetData>", "<sheetData><!--\u{1}-->", 1)
    });
    let bytes = bytes_patch(&bytes, b"\x01", b"\xff");
    assert!(matches!(fast_xlsx_cells(&bytes), Err(why) if why.contains("UTF-8")));
    // A sheet cut short: the zip entry ends inside sheetData.
    let bytes = patch(&roster(true, 5), "xl/worksheets/sheet1.xml", |x| {
        x[..x.find("</sheetData>").unwrap() - 20].to_string()
    });
    assert!(matches!(
        compare("cut", &bytes),
        Verdict::Fallback(_) | Verdict::BothRefuse
    ));
}

/// Random cell contents: text from an alphabet of everything that needs care in XML and
/// in Excel's escapes, numbers of every size, booleans, dates and durations, in both
/// string modes and both epochs. Each case is reproducible from its seed.
#[test]
fn random_cells_read_alike() {
    const ALPHABET: &[&str] = &[
        "a", "Z", "0", "9", " ", "  ", "\t", "\n", "\r\n", "<", ">", "&", "\"", "'", "_x0041_",
        "_x", "_x00", "_x005F_", "x", "中", "团", "（", "）", "é", "😀", "\u{00A0}", "\u{200B}",
        "&amp;", "]]>", "-", "+", ".", "e", "1E5", "_", "\\", ";", "=",
    ];
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let elapsed = Format::new().set_num_format("[mm]:ss");
    let plain = Format::new().set_num_format("0.000");
    let mut fast_cells = 0;
    for seed in 0..120u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let shared = seed % 2 == 0;
        let mut wb = Workbook::new();
        let ws = if shared {
            wb.add_worksheet()
        } else {
            wb.add_worksheet_with_constant_memory().unwrap()
        };
        for r in 0..rng.u32(1..30) {
            for c in 0..rng.u16(1..8) {
                match rng.u8(0..8) {
                    0..=2 => {
                        let text: String = (0..rng.usize(0..12))
                            .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
                            .collect();
                        ws.write_string(r, c, text).unwrap();
                    }
                    3 => {
                        let n = match rng.u8(0..4) {
                            0 => rng.i64(..) as f64,
                            1 => rng.f64() * 10f64.powi(rng.i32(-20..20)),
                            2 => -(rng.u32(..) as f64),
                            _ => 1e15 + rng.u64(..1_000_000_000) as f64 * 100.0,
                        };
                        ws.write_number(r, c, n).unwrap();
                    }
                    4 => ws
                        .write_number_with_format(r, c, rng.f64() * 80000.0, &date)
                        .map(|_| ())
                        .unwrap(),
                    5 => ws
                        .write_number_with_format(r, c, rng.f64() * 3.0, &elapsed)
                        .map(|_| ())
                        .unwrap(),
                    6 => ws
                        .write_number_with_format(r, c, rng.f64(), &plain)
                        .map(|_| ())
                        .unwrap(),
                    _ => ws.write_boolean(r, c, rng.bool()).map(|_| ()).unwrap(),
                }
            }
        }
        let mut bytes = wb.save_to_buffer().unwrap();
        if seed % 3 == 0 {
            bytes = in_1904(&bytes);
        }
        match compare(&format!("seed {seed}"), &bytes) {
            Verdict::Same(n) => fast_cells += n,
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert!(fast_cells > 5_000, "{fast_cells}");
}

/// Mutated workbooks (bytes cut, copied, flipped; XML fragments and entities spliced into
/// the sheets, shared strings and styles): the fast reader never panics, never gives a
/// cell calamine does not give, and never reads a file calamine refuses. A cheap, seeded
/// cousin of the differential fuzzing in BENCHMARKS.md.
#[test]
fn mutated_workbooks_are_never_read_differently() {
    const DICT: &[&str] = &[
        "<",
        ">",
        "/",
        "&amp;",
        "&#x41;",
        "&#0;",
        "&bogus;",
        "&",
        ";",
        "<v>",
        "</v>",
        "<c>",
        "</c>",
        "<c r=\"A1\">",
        "t=\"s\"",
        "t=\"str\"",
        "t=\"b\"",
        "t=\"e\"",
        "t=\"inlineStr\"",
        "s=\"1\"",
        "_x0041_",
        "_xD83D_",
        "\"",
        "'",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "\r\n",
        "<is><t>",
        "</t></is>",
        "xml:space=\"preserve\"",
        "<row r=\"4294967295\">",
        "</row>",
        "<f>",
        "</f>",
        "<r><t>",
        "</t></r>",
        "<rPh>",
        "</rPh>",
        "<si>",
        "</si>",
        "<t/>",
        "<v/>",
        "1e308",
        "NaN",
        "#N/A",
        "</sheetData>",
        "\u{4e2d}",
        "\u{ff}",
    ];
    let mut bases = vec![roster(true, 30), roster(false, 30)];
    for name in [
        "errors.xlsx",
        "richtext-namespaced.xlsx",
        "date.xlsx",
        "issue_174.xlsx",
    ] {
        if let Ok(b) = std::fs::read(crate::reading::corpus().join(name)) {
            bases.push(b);
        }
    }
    let (mut same, mut other) = (0, 0);
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let base = &bases[rng.usize(..bases.len())];
        let part = ["worksheets/", "sharedstrings", "styles"][rng.usize(..3)];
        let mut zip = zip::ZipArchive::new(Cursor::new(base.as_slice())).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).unwrap();
            if name.to_ascii_lowercase().contains(part) {
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(..=b.len());
                    match rng.u8(0..5) {
                        0 => {
                            let end = (at + rng.usize(0..64)).min(b.len());
                            b.drain(at..end);
                        }
                        1 => {
                            let t = DICT[rng.usize(..DICT.len())];
                            b.splice(at..at, t.bytes());
                        }
                        2 if at < b.len() => b[at] = rng.u8(..),
                        3 => {
                            let end = (at + rng.usize(0..200)).min(b.len());
                            let piece = b[at..end].to_vec();
                            let to = rng.usize(..=b.len());
                            b.splice(to..to, piece);
                        }
                        _ => b.truncate(at),
                    }
                }
            }
            out.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(&b).unwrap();
        }
        let bytes = out.finish().unwrap().into_inner();
        match compare(&format!("mutant {seed}"), &bytes) {
            Verdict::Same(_) => same += 1,
            _ => other += 1,
        }
    }
    // Enough mutants stay readable for the comparison to mean something.
    assert!(
        same > 30 && other > 30,
        "{same} read alike, {other} not read"
    );
}
