//! The offline commands as a user runs them: `validate` and `sample` exit by verdict
//! (SPEC §11), the bundled samples say what README says, help texts stand alone.

use super::*;

#[test]
fn sample_then_validate_exits_by_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.xlsx");
    let orgs = dir.path().join("orgs.csv");
    for (rate, want) in [(0.0, 0), (0.1, 1)] {
        let o = roster()
            .args([
                "sample",
                "--rows",
                "300",
                "--error-rate",
                &rate.to_string(),
                "--out",
            ])
            .arg(&file)
            .arg("--orgs-out")
            .arg(&orgs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = dir.path().join(format!("reports-{rate}"));
        let (code, text) = validate(&file, &orgs, "members", &out);
        assert_eq!(code, want, "{text}");
        let s = summary(&out);
        assert_eq!(s["rows"]["total"], 300);
        assert_eq!(s["verdict"], "accepted");
        if want == 1 {
            assert_eq!(
                s["rows"]["with_errors"].as_u64().unwrap() + s["rows"]["valid"].as_u64().unwrap(),
                300
            );
            assert!(out.join("summary.xlsx").exists());
        }
    }
}

#[test]
fn a_rejected_file_exits_2_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("roster.xlsx");
    std::fs::write(&bad, "姓名,身份证号码\n").unwrap();
    let out = dir.path().join("reports");
    let (code, text) = validate(&bad, &root().join("sample-data/orgs.csv"), "members", &out);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("file_unreadable"), "{text}");
    assert_eq!(summary(&out)["verdict"], "rejected");
}

#[test]
fn a_mixed_template_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let (code, text) = validate(
        &root().join("sample-data/cadres.xlsx"),
        &root().join("sample-data/orgs.csv"),
        "members",
        &out,
    );
    assert_eq!(code, 2, "{text}");
    assert_eq!(summary(&out)["file_error"]["code"], "template_mixed");
}

#[test]
fn an_unknown_uploader_or_bad_org_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = roster()
        .args(["validate"])
        .arg(root().join("sample-data/members.xlsx"))
        .arg("--orgs")
        .arg(root().join("sample-data/orgs.csv"))
        .args(["--uploader", "不存在的团委", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("不存在的团委"));
    let orgs = dir.path().join("orgs.csv");
    std::fs::write(
        &orgs,
        "组织全称,组织简称,组织类别,上级组织全称\nA,A,团小组,\n",
    )
    .unwrap();
    let (code, text) = validate(
        &root().join("sample-data/members.xlsx"),
        &orgs,
        "members",
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(text.contains("团小组"), "{text}");
}

/// The bundled samples README.md runs: every mistake file finds every offline code.
#[test]
fn bundled_samples_validate_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let orgs = root().join("sample-data/orgs.csv");
    for (file, template, want) in [
        ("members.xlsx", "members", 1),
        ("cadres.xlsx", "cadres", 1),
        ("members-every-mistake.xlsx", "members", 1),
    ] {
        let out = dir.path().join(file);
        let (code, text) = validate(
            &root().join("sample-data").join(file),
            &orgs,
            template,
            &out,
        );
        assert_eq!(code, want, "{file}: {text}");
    }
    let s = summary(&dir.path().join("members-every-mistake.xlsx"));
    let seen: Vec<&str> = s["counts_by_code"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for code in schemas::ErrorCode::ALL {
        if code.level() == schemas::Level::Row && !code.needs_database() {
            assert!(
                seen.contains(&code.code()),
                "{code} missing from the every-mistake sample"
            );
        }
    }
}

/// `--help` says what each command does without sending users to a document they do not
/// have (SPEC sections).
#[test]
fn help_texts_are_self_contained() {
    let commands: &[&[&str]] = &[
        &[],
        &["validate"],
        &["import"],
        &["submit"],
        &["worker"],
        &["stats"],
        &["stats", "run"],
        &["stats", "export"],
        &["status"],
        &["reports"],
        &["migrate"],
        &["orgs"],
        &["orgs", "import"],
        &["sample"],
    ];
    for args in commands {
        let o = roster().args(*args).arg("--help").output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Usage: roster"), "{args:?}: {text}");
        assert!(
            !text.contains("SPEC") && !text.contains('§'),
            "{args:?}: {text}"
        );
    }
}
