//! The blank templates to download: their headers under an instructions row, a dropdown
//! on every enumerated column, and, once filled in, a roster like any other.

use pipeline::blank::{HEADER_ROW, OPTIONS_SHEET, template_bytes, template_workbook};
use schemas::{Kind, TemplateKind};

use crate::helpers::{BRANCH, GUANGDONG, Person, V, findings, validate};

fn parts(bytes: &[u8]) -> (String, String) {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    (read("xl/worksheets/sheet1.xml"), read("xl/workbook.xml"))
}

#[test]
fn each_template_has_its_headers_and_a_dropdown_per_enumeration() {
    for kind in [TemplateKind::Members, TemplateKind::Cadres] {
        let template = kind.template();
        let bytes = template_bytes(kind).unwrap();
        let (sheet, workbook) = parts(&bytes);
        let enums: Vec<_> = template
            .columns
            .iter()
            .filter(|c| matches!(c.kind, Kind::Enum(_)))
            .collect();
        assert!(enums.len() >= 5, "{kind:?}");
        // One list validation per enumerated column, each on its own options column.
        assert_eq!(
            sheet.matches("<dataValidation type=\"list\"").count(),
            enums.len(),
            "{kind:?}"
        );
        for (n, c) in enums.iter().enumerate() {
            let Kind::Enum(vocab) = c.kind else {
                unreachable!()
            };
            let letter = (b'A' + n as u8) as char;
            let range = format!(
                "'{OPTIONS_SHEET}'!${letter}$1:${letter}${}",
                vocab.values.len()
            );
            assert!(
                sheet.contains(&range),
                "{kind:?} {}: {range}",
                c.field.header()
            );
        }
        assert!(
            workbook.contains(&format!("name=\"{OPTIONS_SHEET}\""))
                && workbook.contains("state=\"hidden\"")
        );
        // The options sheet lists every accepted value in order; the headers come after
        // the instructions row.
        use calamine::{Reader, open_workbook_auto_from_rs};
        let mut wb = open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let options = wb.worksheet_range(OPTIONS_SHEET).unwrap();
        for (n, c) in enums.iter().enumerate() {
            let Kind::Enum(vocab) = c.kind else {
                unreachable!()
            };
            let column: Vec<String> = (0..vocab.values.len())
                .map(|r| options.get_value((r as u32, n as u32)).unwrap().to_string())
                .collect();
            assert_eq!(column, vocab.values, "{}", c.field.header());
        }
        let first = wb.worksheet_range(template.title).unwrap();
        let headers: Vec<String> = (0..template.columns.len())
            .map(|c| first.get_value((HEADER_ROW, c as u32)).unwrap().to_string())
            .collect();
        for (h, c) in headers.iter().zip(template.columns) {
            assert_eq!(h.trim_start_matches('*'), c.field.header());
        }
    }
}

#[test]
fn a_filled_in_template_is_read_and_validated_like_any_roster() {
    for kind in [TemplateKind::Members, TemplateKind::Cadres] {
        let template = kind.template();
        let mut wb = template_workbook(kind).unwrap();
        let ws = wb.worksheet_from_index(0).unwrap();
        let people = [
            Person::new(1),
            Person::new(2),
            Person::new(3).text(schemas::Field::Phone, "123"),
        ];
        for (r, p) in people.iter().enumerate() {
            let cells = p.cells(kind);
            for (c, col) in template.columns.iter().enumerate() {
                if let Some(V::S(v)) = cells.get(&col.field) {
                    ws.write_string(HEADER_ROW + 1 + r as u32, c as u16, v)
                        .unwrap();
                }
            }
        }
        let uploader = if kind == TemplateKind::Members {
            GUANGDONG
        } else {
            BRANCH
        };
        let v = validate(&wb.save_to_buffer().unwrap(), kind, uploader);
        let counts = v.counts().unwrap();
        assert_eq!(
            (counts.total, counts.valid, counts.with_errors),
            (3, 2, 1),
            "{kind:?}"
        );
        let f = findings(&v);
        // Excel rows: instructions (1), header (2), people from row 3.
        let codes: Vec<_> = f[&5].iter().map(|x| x.0).collect();
        assert_eq!(codes, vec![schemas::ErrorCode::PhoneInvalid], "{kind:?}");
        assert!(v.warnings.is_empty(), "{kind:?}: {:?}", v.warnings);
    }
}
