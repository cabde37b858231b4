//! An admin's afternoon in a real headless Chromium: the bootstrapped admin at the top
//! signs in, changes the initial password and reads a child's registration code; the
//! child's admin registers, uploads the sample roster and watches it reach 已完成, then
//! downloads a branch's workbook; that branch's admin sees exactly their workbook, and
//! summary.xlsx answers 404 for them. Screenshots go to `ROSTER_SCREENSHOTS` (README's
//! `docs/screenshots`) when set.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;

use crate::browser::Browser;
use crate::harness::{Env, id_number};

const TOP: &str = "共青团中央";
const PROVINCE: &str = "共青团广东省委员会";

fn shots() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var("ROSTER_SCREENSHOTS") {
        Ok(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (PathBuf::from(dir), None)
        }
        Err(_) => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    }
}

#[test]
fn admins_sign_up_down_the_tree_upload_and_each_sees_their_own_workbook() {
    let env = Env::start();
    let _worker = env.start_worker();
    let (dir, _keep) = shots();
    let b = Browser::start();
    let shot = |name: &str| b.screenshot(&dir.join(name));
    let home = env.url("/");

    // The operators' bootstrap: initial password = the last 8 characters of the ID.
    let top_id = id_number("110101", NaiveDate::from_ymd_opt(1985, 4, 1).unwrap(), 21);
    let initial = top_id[10..].to_string();
    env.add_admin(TOP, &top_id, "赵管理员", &initial, true);

    // 1. Sign in, forced to change the password first.
    b.goto(&env.url("/login"));
    b.fill("input[name=id_number]", &top_id);
    b.fill("input[name=password]", &initial);
    shot("01-login.png");
    b.click("form.card button[type=submit]");
    b.wait_url("/password");
    let new_password = "Tuanzhongyang2026";
    b.fill("input[name=old]", &initial);
    b.fill("input[name=new]", new_password);
    b.fill("input[name=confirm]", new_password);
    shot("02-password.png");
    b.click("form.card button[type=submit]");
    b.wait_url(&home);

    // The child's registration code.
    b.goto(&env.url("/codes"));
    let code = b.text(&format!("tr[data-org=\"{PROVINCE}\"] code.code"));
    assert_eq!(code.len(), 8, "{code}");
    shot("03-codes.png");
    b.click("header form.inline button");
    b.wait_url("/login");

    // The child's admin registers with it and signs in.
    let province_id = id_number("440103", NaiveDate::from_ymd_opt(1992, 7, 9).unwrap(), 33);
    let province_password = "Guangdong2026";
    b.goto(&env.url("/register"));
    for (field, value) in [
        ("org", PROVINCE),
        ("code", code.as_str()),
        ("name", "钱管理员"),
        ("id_number", province_id.as_str()),
        ("phone", "13900000002"),
        ("password", province_password),
        ("confirm", province_password),
    ] {
        b.fill(&format!("input[name={field}]"), value);
    }
    b.click("form.card button[type=submit]");
    b.wait_for_text("main", "注册成功", Duration::from_secs(30));
    shot("04-register.png");
    b.goto(&env.url("/login"));
    b.fill("input[name=id_number]", &province_id);
    b.fill("input[name=password]", province_password);
    b.click("form.card button[type=submit]");
    b.wait_url(&home);

    // 2. Upload the sample roster and watch it reach 已完成.
    b.goto(&env.url("/upload"));
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-data/members.xlsx");
    b.fill(
        "input[name=file]",
        sample.canonicalize().unwrap().to_str().unwrap(),
    );
    shot("05-upload.png");
    b.click("form.card button[type=submit]");
    let detail = {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let url = b.url();
            if url.contains("/uploads/") {
                break url;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not on an upload: {url}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let upload: i64 = detail.rsplit('/').next().unwrap().parse().unwrap();
    b.wait_text("#status", "已完成", Duration::from_secs(120));
    shot("06-detail.png");
    b.goto(&env.url("/"));
    assert!(b.text("table.list").contains("已完成"));
    shot("07-home.png");

    // 3. Download a branch's workbook and open it.
    b.goto(&detail);
    let source = b.source();
    let books: Vec<String> = source
        .split("data-report=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|n| n.ends_with("团支部.xlsx"))
        .map(str::to_string)
        .collect();
    let book = books.first().expect("a branch has findings").clone();
    let branch = book.trim_end_matches(".xlsx").to_string();
    b.click(&format!("a[data-report=\"{book}\"]"));
    let file = b.downloaded(".xlsx", Duration::from_secs(30));
    let rows = branch_column(&std::fs::read(&file).unwrap());
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| *r == branch), "{rows:?}");
    b.click("header form.inline button");
    b.wait_url("/login");

    // 4. That branch's admin sees exactly its workbook, and no summary.
    let branch_id = id_number("440103", NaiveDate::from_ymd_opt(2000, 1, 2).unwrap(), 44);
    let branch_password = "Zhibu2026pass";
    env.add_admin(&branch, &branch_id, "孙书记", branch_password, false);
    b.goto(&env.url("/login"));
    b.fill("input[name=id_number]", &branch_id);
    b.fill("input[name=password]", branch_password);
    b.click("form.card button[type=submit]");
    b.wait_url(&home);
    b.goto(&env.url(&format!("/uploads/{upload}")));
    let listed: Vec<String> = b
        .source()
        .split("data-report=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect();
    shot("08-branch.png");
    assert_eq!(listed, vec![book.clone()], "{}", b.text("main"));
    let session = b.cookie("roster_session").expect("signed in");
    let summary = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
        .get(env.url(&format!("/api/v1/uploads/{upload}/reports/summary.xlsx")))
        .header("cookie", format!("roster_session={session}"))
        .call()
        .unwrap();
    assert_eq!(summary.status().as_u16(), 404);
    b.goto(&env.url(&format!("/api/v1/uploads/{upload}/reports/summary.xlsx")));
    assert!(b.source().contains("不存在"));
    for name in [
        "01-login.png",
        "02-password.png",
        "03-codes.png",
        "04-register.png",
        "05-upload.png",
        "06-detail.png",
        "07-home.png",
        "08-branch.png",
    ] {
        let png = std::fs::read(dir.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{name}");
    }
}

/// The 所在团支部 column of a workbook's first sheet, below its header.
fn branch_column(bytes: &[u8]) -> Vec<String> {
    use calamine::{Reader, open_workbook_auto_from_rs};
    let mut wb = open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let first = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&first).unwrap();
    let mut rows = range.rows();
    let header = rows.next().unwrap();
    let col = header.iter().position(|c| *c == "所在团支部").unwrap();
    rows.map(|r| r[col].to_string()).collect()
}
