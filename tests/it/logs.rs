//! What the commands print and log: no identity or phone number in any log, and a
//! closed pipe ends a command quietly.

use std::path::Path;

use super::*;

/// Every ID number and phone number of a roster: its cells that look like one.
pub(crate) fn identifiers(file: &Path) -> Vec<String> {
    use calamine::{Reader, open_workbook_auto};
    let mut wb = open_workbook_auto(file).unwrap();
    let sheet = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&sheet).unwrap();
    let mut found: Vec<String> = range
        .rows()
        .flatten()
        .map(|c| c.to_string().trim().to_string())
        .filter(|v| {
            let digits = v.trim_end_matches(['X', 'x']);
            let id_like =
                (15..=18).contains(&v.len()) && digits.bytes().all(|b| b.is_ascii_digit());
            let phone_like =
                v.len() == 11 && v.starts_with('1') && v.bytes().all(|b| b.is_ascii_digit());
            id_like || phone_like
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// No personal data in logs: at the most verbose level, neither `validate` nor `import`
/// logs an ID or phone number of the roster it processes.
#[sqlx::test(migrations = false)]
async fn logs_carry_no_identity_or_phone_numbers(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let data = root().join("sample-data");
    let file = data.join("members-every-mistake.xlsx");
    let secrets = identifiers(&file);
    assert!(
        secrets.len() > 40,
        "the sample holds IDs and phones: {secrets:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let orgs = data.join("orgs.csv");
    let runs: [Vec<&std::ffi::OsStr>; 2] = [
        vec![
            "validate".as_ref(),
            file.as_ref(),
            "--orgs".as_ref(),
            orgs.as_ref(),
        ],
        vec!["import".as_ref(), file.as_ref()],
    ];
    for (n, args) in runs.iter().enumerate() {
        let out = dir.path().join(format!("r{n}"));
        let o = roster()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .args(args)
            .args(["--uploader", UPLOADER, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let log = String::from_utf8_lossy(&o.stderr);
        // The log is there (so the check below can fail)...
        assert!(log.contains("rules evaluated"), "{log}");
        // ...and holds none of the roster's identifiers.
        for s in &secrets {
            assert!(!log.contains(s.as_str()), "{} logged by {:?}", s, args[0]);
        }
    }
}

/// `roster … | head`: when the reader of stdout has gone before anything is written, a
/// command ends quietly with status 0 (no panic, no error message).
#[sqlx::test(migrations = false)]
async fn commands_end_quietly_when_the_reader_closes_the_pipe(pool: sqlx::PgPool) {
    let url = url_of(&pool);
    setup_db(&url).await;
    let data = root().join("sample-data");
    let dir = tempfile::tempdir().unwrap();
    let file = data.join("members.xlsx");
    let (code, text) = import_as_uploader(&url, &file, &dir.path().join("imported"));
    assert_eq!(code, 1, "{text}");
    let upload: i64 = sqlx::query_scalar("SELECT max(id) FROM uploads")
        .fetch_one(&pool)
        .await
        .unwrap();
    let upload = upload.to_string();
    let (out, orgs) = (dir.path().join("validated"), data.join("orgs.csv"));
    let runs: [Vec<&std::ffi::OsStr>; 3] = [
        vec![
            "validate".as_ref(),
            file.as_ref(),
            "--orgs".as_ref(),
            orgs.as_os_str(),
            "--uploader".as_ref(),
            UPLOADER.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        vec!["status".as_ref(), upload.as_ref()],
        vec!["reports".as_ref(), upload.as_ref()],
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = roster()
            .env("DATABASE_URL", &url)
            // `reports` signs links locally: no storage server is asked.
            .env("ROSTER_BUCKET", "roster")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "K")
            .env("AWS_SECRET_ACCESS_KEY", "S")
            .env("RUST_BACKTRACE", "1")
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{:?}: {stderr}", args[0]);
        assert!(stderr.is_empty(), "{:?}: {stderr}", args[0]);
    }
    // The same commands with a reader print what they print (the runs above were real).
    let (code, text) = with_db(&url, &["status", &upload]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"status\": \"succeeded\""), "{text}");
}
