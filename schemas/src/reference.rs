//! Reference data compiled into the binary: every GB/T 2260 region code ever used
//! (SPEC §5.1), so validation needs no files at run time.

/// The raw CSV (`code,name,start_year,end_year`), copied from `shared/reference/`.
pub const REGION_CODES_CSV: &str = include_str!("../data/region-codes.csv");

/// Region codes valid in an ID number although they are not in GB/T 2260: residence
/// permits of Hong Kong, Macau and Taiwan residents.
pub const RESIDENCE_PERMIT_CODES: [&str; 3] = ["810000", "820000", "830000"];

/// Every 6-digit code that may open an ID number: each code of the CSV whatever its
/// years (an ID keeps the code of where it was issued), plus the residence permits.
pub fn region_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = REGION_CODES_CSV
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .filter(|code| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
        .chain(RESIDENCE_PERMIT_CODES)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Name of a region code, for messages and sample data.
pub fn region_name(code: &str) -> Option<&'static str> {
    REGION_CODES_CSV
        .lines()
        .skip(1)
        .find(|line| line.starts_with(code) && line.as_bytes().get(6) == Some(&b','))
        .and_then(|line| line.split(',').nth(1))
}

/// Province names by 2-digit code (the `xx0000` rows).
pub fn province_name(code: &str) -> Option<&'static str> {
    match code {
        "66" => Some("新疆生产建设兵团"),
        _ => region_name(&format!("{code}0000")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_cover_the_csv_and_permits() {
        let codes = region_codes();
        // 8,137 rows; codes reused across periods appear once.
        assert_eq!(codes.len(), 7212, "{}", codes.len());
        // Among them 丽水's 1986–2000 county codes and codes created since 2021.
        let newer = ["332801", "332829", "350404", "500157", "540581", "653229"];
        for c in ["110101", "650000", "810000", "820000", "830000", "140120"]
            .into_iter()
            .chain(newer)
        {
            assert!(codes.binary_search(&c).is_ok(), "{c}");
        }
        assert!(codes.binary_search(&"111111").is_err());
        assert_eq!(province_name("44"), Some("广东省"));
        assert_eq!(province_name("65"), Some("新疆维吾尔自治区"));
    }
}
