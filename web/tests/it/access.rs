//! Who sees what (SPEC §12.2), as one table: every route of the API and of the pages,
//! tried by every viewer position around one processed upload, each with the answer it
//! must get. Guessed upload ids and report names are rows of the same table.

use std::time::Duration;

use chrono::NaiveDate;

use crate::harness::{Auth, Env, id_number};

const UPLOADER: &str = "广州市荔湾区第1中学团委";
const PARENT: &str = "共青团广州市荔湾区委员会";
const GRANDPARENT: &str = "共青团广州市委员会";
const BRANCH_WITH: &str = "广州市荔湾区第1中学初一1班团支部";
const BRANCH_WITHOUT: &str = "广州市荔湾区第1中学高三3班团支部";
const SIBLING: &str = "广州市荔湾区第2中学团委";
const OTHER_PROVINCE: &str = "北京市第一中学团委";
/// Above the other province's admin: nobody in the table sees it.
const OTHER_PROVINCE_PARENT: &str = "共青团北京市委员会";
const UNKNOWN_BRANCH: &str = "广州市荔湾区第1中学不存在班团支部";
const PASSWORD: &str = "Roster2026pass";

/// Where a viewer stands relative to the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// An admin of the uploading organisation.
    Own,
    Parent,
    Grandparent,
    /// A branch below the uploader with a workbook in the upload.
    ChildWith,
    /// A branch below the uploader whose rows were all valid (no workbook).
    ChildWithout,
    /// Another school committee under the same parent.
    Sibling,
    OtherProvince,
    Anonymous,
}

use Position::*;

const POSITIONS: [(Position, &str); 8] = [
    (Own, UPLOADER),
    (Parent, PARENT),
    (Grandparent, GRANDPARENT),
    (ChildWith, BRANCH_WITH),
    (ChildWithout, BRANCH_WITHOUT),
    (Sibling, SIBLING),
    (OtherProvince, OTHER_PROVINCE),
    (Anonymous, ""),
];

/// Who gets the route's success answer; everyone else signed in gets 404.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in admin (their own scope).
    SignedIn,
    /// Admins of the uploader and above it.
    AboveUploader,
    /// `AboveUploader`, and the branch with a workbook in the upload.
    UploadViewers,
    /// Only the uploader's own admins (its direct children's codes).
    OwnOnly,
    /// Nobody: a guessed id or name (the anonymous are asked to sign in).
    Nobody,
    /// Nobody, and the anonymous get 404 too (a public route, nothing there).
    Missing,
}

impl Who {
    fn includes(self, p: Position) -> bool {
        match self {
            Who::Public => true,
            Who::SignedIn => p != Anonymous,
            Who::AboveUploader => matches!(p, Own | Parent | Grandparent),
            Who::UploadViewers => matches!(p, Own | Parent | Grandparent | ChildWith),
            Who::OwnOnly => p == Own,
            Who::Nobody | Who::Missing => false,
        }
    }
}

/// API routes answer 401 to the anonymous; pages redirect them to the login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Api,
    Page,
}

/// One member row of template A.
fn row(
    name: &str,
    seq: u32,
    birth: NaiveDate,
    joined: &str,
    dev: &str,
    phone: &str,
    branch: &str,
) -> Vec<String> {
    [
        name,
        &id_number("440103", birth, seq),
        "汉族",
        "共青团员",
        joined,
        dev,
        "普通高中",
        "学生",
        phone,
        branch,
        "否",
        "",
        "",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The school committee's roster: valid rows in two branches, one branch with a bad
/// phone and a member too young at joining (an escalation), and a branch that does not
/// exist (the uploader's own workbook).
pub fn roster_bytes() -> Vec<u8> {
    let teen = NaiveDate::from_ymd_opt(2008, 3, 15).unwrap();
    let child = NaiveDate::from_ymd_opt(2012, 1, 1).unwrap();
    let rows = [
        row(
            "学生甲",
            11,
            teen,
            "2022-05",
            "202244000101",
            "13800138011",
            BRANCH_WITH,
        ),
        row(
            "学生乙",
            12,
            teen,
            "2022-05",
            "202244000102",
            "13800138012",
            BRANCH_WITH,
        ),
        row(
            "学生丙",
            13,
            teen,
            "2022-05",
            "202244000103",
            "13800138013",
            BRANCH_WITH,
        ),
        row(
            "学生丁",
            14,
            teen,
            "2022-05",
            "202244000104",
            "1380013",
            BRANCH_WITH,
        ),
        row(
            "学生戊",
            15,
            child,
            "2022-05",
            "202244000105",
            "13800138015",
            BRANCH_WITH,
        ),
        row(
            "学生己",
            16,
            teen,
            "2022-05",
            "202244000106",
            "13800138016",
            BRANCH_WITHOUT,
        ),
        row(
            "学生庚",
            17,
            teen,
            "2022-05",
            "202244000107",
            "13800138017",
            BRANCH_WITHOUT,
        ),
        row(
            "学生辛",
            18,
            teen,
            "2022-05",
            "202244000108",
            "13800138018",
            UNKNOWN_BRANCH,
        ),
    ];
    let mut wb = pipeline::blank::template_workbook(schemas::TemplateKind::Members).unwrap();
    let ws = wb.worksheet_from_index(0).unwrap();
    for (r, cells) in rows.iter().enumerate() {
        for (c, v) in cells.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(pipeline::blank::HEADER_ROW + 1 + r as u32, c as u16, v)
                    .unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

struct World {
    env: Env,
    upload: i64,
    /// Each position's credentials (`None` for the anonymous).
    bearer: Vec<(Position, Option<Auth>)>,
    cookie: Vec<(Position, Option<Auth>)>,
}

/// The upload, processed; an admin at every position; a statistics snapshot.
fn world() -> World {
    // Every position sends bad registrations from one address: the throttle (tested on
    // its own in `hostile`) is out of the way here.
    let env = Env::with_config(web::Config {
        register_throttle: i64::MAX,
        ..web::Config::default()
    });
    let mut bearer = Vec::new();
    let mut cookie = Vec::new();
    for (i, (p, org)) in POSITIONS.iter().enumerate() {
        if *p == Anonymous {
            bearer.push((*p, None));
            // A browser that has been to a page (its CSRF cookie) but is not signed in.
            cookie.push((*p, Some(Auth::cookie("not-a-session"))));
            continue;
        }
        let id = env.admin(org, 100 + i as u32, PASSWORD, false);
        bearer.push((*p, Some(Auth::Bearer(env.login(&id, PASSWORD)))));
        cookie.push((*p, Some(Auth::cookie(&env.login(&id, PASSWORD)))));
    }
    let own = bearer[0].1.clone().unwrap();
    let r = env.post_multipart(
        "/api/v1/uploads",
        Some(&own),
        &[("template", "members")],
        ("名单.xlsx", &roster_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let upload = r.json()["id"].as_i64().unwrap();
    env.process_uploads(Duration::from_secs(120));
    let today = pipeline::today_in_china();
    env.rt
        .block_on(registry::stats::run(
            &env.pool,
            today,
            registry::stats::Mode::Replace,
        ))
        .unwrap();
    World {
        env,
        upload,
        bearer,
        cookie,
    }
}

#[test]
fn every_route_answers_every_viewer_position_as_the_access_rules_say() {
    let w = world();
    let env = &w.env;
    let id = w.upload;
    // The upload went through and made the reports the table expects.
    let status = env
        .get(&format!("/api/v1/uploads/{id}"), w.bearer[0].1.as_ref())
        .json();
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(status["rows_total"], 8);
    assert_eq!(status["rows_with_errors"], 3, "{status}");
    let names: Vec<String> = env
        .get(
            &format!("/api/v1/uploads/{id}/reports"),
            w.bearer[0].1.as_ref(),
        )
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let book = format!("{BRANCH_WITH}.xlsx");
    let uploader_book = format!("{UPLOADER}.xlsx");
    for n in [
        "summary.xlsx",
        "summary.json",
        "escalations.xlsx",
        &book,
        &uploader_book,
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    assert_eq!(names.len(), 5, "{names:?}");

    let enc = web::api::percent;
    let up = format!("/api/v1/uploads/{id}");
    let rep = |n: &str| format!("/api/v1/uploads/{id}/reports/{}", enc(n));
    let stats_of = |org: &str| format!("/api/v1/stats?org={}", enc(org));
    let get = |face: Face, path: String, who: Who, ok: u16| Row {
        face,
        path,
        body: Body::None,
        who,
        ok,
        only: None,
    };
    use Face::{Api, Page};
    let mut table: Vec<Row> = vec![
        get(Api, "/api/v1/me".into(), Who::SignedIn, 200),
        get(Api, "/api/v1/uploads".into(), Who::SignedIn, 200),
        get(Api, up.clone(), Who::UploadViewers, 200),
        get(Api, format!("{up}/reports"), Who::UploadViewers, 200),
        get(Api, rep("summary.xlsx"), Who::AboveUploader, 302),
        get(Api, rep("summary.json"), Who::AboveUploader, 302),
        get(Api, rep("escalations.xlsx"), Who::AboveUploader, 302),
        // Organisation workbooks are entries of the upload's bundle: the file itself.
        get(Api, rep(&book), Who::UploadViewers, 200),
        get(Api, rep(&uploader_book), Who::AboveUploader, 200),
        // Guesses: other ids, other names, paths.
        get(Api, format!("/api/v1/uploads/{}", id + 1), Who::Nobody, 200),
        get(Api, "/api/v1/uploads/0".into(), Who::Nobody, 200),
        get(
            Api,
            format!("/api/v1/uploads/{}/reports", id + 7),
            Who::Nobody,
            200,
        ),
        get(
            Api,
            format!("/api/v1/uploads/{}/reports/summary.xlsx", id + 1),
            Who::Nobody,
            302,
        ),
        get(
            Api,
            rep(&format!("{BRANCH_WITHOUT}.xlsx")),
            Who::Nobody,
            302,
        ),
        get(Api, rep(&format!("{SIBLING}.xlsx")), Who::Nobody, 302),
        get(Api, rep("../summary.xlsx"), Who::Nobody, 302),
        get(
            Api,
            rep(&format!("reports/{id}/summary.xlsx")),
            Who::Nobody,
            302,
        ),
        get(Api, "/api/v1/stats".into(), Who::SignedIn, 200),
        get(Api, stats_of(UPLOADER), Who::AboveUploader, 200),
        get(Api, stats_of(BRANCH_WITH), Who::UploadViewers, 200),
        get(Api, stats_of(OTHER_PROVINCE_PARENT), Who::Nobody, 200),
        get(Api, "/api/v1/orgs/codes".into(), Who::SignedIn, 200),
        get(
            Api,
            "/api/v1/templates/members.xlsx".into(),
            Who::Public,
            200,
        ),
        get(
            Api,
            "/api/v1/templates/cadres.xlsx".into(),
            Who::Public,
            200,
        ),
        get(
            Api,
            "/api/v1/templates/other.xlsx".into(),
            Who::Missing,
            200,
        ),
        get(Api, "/api/v1/openapi.json".into(), Who::Public, 200),
        get(Api, "/healthz".into(), Who::Public, 200),
        // Operators' endpoints are on their own listener, not the public port.
        get(Api, "/readyz".into(), Who::Missing, 200),
        get(Api, "/metrics".into(), Who::Missing, 200),
        get(Page, "/".into(), Who::SignedIn, 200),
        get(Page, "/upload".into(), Who::SignedIn, 200),
        get(Page, format!("/uploads/{id}"), Who::UploadViewers, 200),
        get(Page, format!("/uploads/{}", id + 1), Who::Nobody, 200),
        get(Page, "/stats".into(), Who::SignedIn, 200),
        get(
            Page,
            format!("/stats?org={}", enc(UPLOADER)),
            Who::AboveUploader,
            200,
        ),
        get(
            Page,
            format!("/stats?org={}", enc(OTHER_PROVINCE_PARENT)),
            Who::Nobody,
            200,
        ),
        get(
            Page,
            format!("/stats/export?org={}", enc(UPLOADER)),
            Who::AboveUploader,
            200,
        ),
        get(
            Page,
            format!(
                "/stats/export?org={}&format=csv",
                enc(OTHER_PROVINCE_PARENT)
            ),
            Who::Nobody,
            200,
        ),
        get(Page, "/codes".into(), Who::SignedIn, 200),
        get(Page, "/password".into(), Who::SignedIn, 200),
        get(Page, "/login".into(), Who::Public, 200),
        get(Page, "/register".into(), Who::Public, 200),
        get(Page, "/static/app.css".into(), Who::Public, 200),
        get(Page, "/static/app.js".into(), Who::Public, 200),
    ];
    let post = |face: Face, path: &str, body: Body, who: Who, ok: u16| Row {
        face,
        path: path.into(),
        body,
        who,
        ok,
        only: None,
    };
    let json = |v: serde_json::Value| Body::Json(v);
    table.extend([
        post(
            Api,
            "/api/v1/orgs/codes/regenerate",
            json(serde_json::json!({"org": BRANCH_WITH})),
            Who::OwnOnly,
            200,
        ),
        post(
            Page,
            "/codes/regenerate",
            Body::Form(vec![("org", BRANCH_WITH.into())]),
            Who::OwnOnly,
            303,
        ),
        post(
            Api,
            "/api/v1/password",
            json(serde_json::json!({"old": "wrong-1234", "new": "Another2026"})),
            Who::SignedIn,
            400,
        ),
        post(
            Page,
            "/password",
            Body::Form(vec![
                ("old", "wrong-1234".into()),
                ("new", "Another2026".into()),
                ("confirm", "Another2026".into()),
            ]),
            Who::SignedIn,
            400,
        ),
        post(
            Api,
            "/api/v1/login",
            json(serde_json::json!({"id_number": "110101199001010010", "password": "x1234567"})),
            Who::Public,
            401,
        ),
        post(
            Api,
            "/api/v1/register",
            json(
                serde_json::json!({"org": BRANCH_WITH, "code": "AAAAAAAA", "name": "某某",
            "id_number": "110101199001010010", "phone": "13800138000", "password": "Roster2026x"}),
            ),
            Who::Public,
            400,
        ),
        post(Api, "/api/v1/uploads", Body::Upload, Who::SignedIn, 201),
        post(Page, "/upload", Body::Upload, Who::SignedIn, 303),
        // Last: ending sessions.
        Row {
            only: Some("cookie"),
            ..post(Page, "/logout", Body::Form(vec![]), Who::SignedIn, 303)
        },
        Row {
            only: Some("bearer"),
            ..post(Api, "/api/v1/logout", Body::None, Who::SignedIn, 204)
        },
    ]);
    table.extend([
        post(
            Page,
            "/login",
            Body::Form(vec![
                ("id_number", "110101199001010010".into()),
                ("password", "x1234567".into()),
            ]),
            Who::Public,
            401,
        ),
        post(
            Page,
            "/register",
            Body::Form(vec![
                ("org", BRANCH_WITH.into()),
                ("code", "AAAAAAAA".into()),
                ("name", "某某".into()),
                ("id_number", "110101199001010010".into()),
                ("phone", "13800138000".into()),
                ("password", "Roster2026x".into()),
                ("confirm", "Roster2026x".into()),
            ]),
            Who::Public,
            400,
        ),
    ]);
    // The table covers every route: each API path of the OpenAPI document (which is
    // built from the routes themselves) and each page route.
    let doc = env.get("/api/v1/openapi.json", None).json();
    let mut routes: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    routes.extend(
        web::pages::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    routes.extend(
        ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"]
            .map(|p| ("GET".to_string(), p.to_string())),
    );
    let matches = |template: &str, path: &str| {
        let path = path.split('?').next().unwrap();
        let (t, p): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
    };
    for (method, template) in &routes {
        assert!(
            table
                .iter()
                .any(|r| r.method() == method && matches(template, &r.path)),
            "{method} {template} is not in the access table"
        );
    }
    assert!(routes.len() >= 30, "{routes:?}");
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut uploads = 0;
    for row in &table {
        for (creds, via) in [(&w.bearer, "bearer"), (&w.cookie, "cookie")] {
            if (row.face == Page && via == "bearer") || row.only.is_some_and(|o| o != via) {
                continue;
            }
            for (p, auth) in creds.iter() {
                let want = match (row.who.includes(*p), p) {
                    (true, _) => row.ok,
                    (false, _) if matches!(row.who, Who::Missing) => 404,
                    (false, Anonymous) if row.face == Api => 401,
                    (false, Anonymous) => 303,
                    (false, _) => 404,
                };
                let r = row.send(env, auth.as_ref(), &mut uploads);
                checked += 1;
                let mut problem = (r.status != want).then(|| {
                    format!(
                        "status {}: {}",
                        r.status,
                        r.text().chars().take(200).collect::<String>()
                    )
                });
                if *p == Anonymous && want == 303 && r.header("location") != Some("/login") {
                    problem = Some(format!("location {:?}", r.header("location")));
                }
                if let Some(problem) = problem {
                    failures.push(format!(
                        "{} {} as {p:?} via {via}: want {want}, got {problem}",
                        row.method(),
                        row.path
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 500, "{checked}");
}

/// A request body of a row of the table.
enum Body {
    None,
    Json(serde_json::Value),
    /// Form fields (the CSRF token is added).
    Form(Vec<(&'static str, String)>),
    /// A roster as multipart (a different one each time, so each is a new upload).
    Upload,
}

struct Row {
    face: Face,
    path: String,
    body: Body,
    who: Who,
    ok: u16,
    /// Only with these credentials (`bearer` or `cookie`).
    only: Option<&'static str>,
}

impl Row {
    fn method(&self) -> &'static str {
        match (&self.body, self.path.as_str()) {
            (Body::None, "/api/v1/logout") | (Body::Json(_) | Body::Form(_) | Body::Upload, _) => {
                "POST"
            }
            _ => "GET",
        }
    }

    fn send(&self, env: &Env, auth: Option<&Auth>, uploads: &mut u32) -> crate::harness::Reply {
        let csrf = auth.map_or("", |a| a.csrf()).to_string();
        match &self.body {
            Body::None if self.method() == "GET" => env.get(&self.path, auth),
            Body::None => env.post_json(&self.path, auth, &serde_json::Value::Null),
            Body::Json(v) => env.post_json(&self.path, auth, v),
            Body::Form(fields) => {
                let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
                all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
                env.post_form(&self.path, auth, &all)
            }
            Body::Upload => {
                *uploads += 1;
                let mut bytes = roster_bytes();
                // Different bytes, same rows: a new upload each time.
                bytes.extend(std::iter::repeat_n(0u8, *uploads as usize));
                env.post_multipart(
                    &self.path,
                    auth,
                    &[("csrf", &csrf), ("template", "members")],
                    ("r.xlsx", &bytes),
                )
            }
        }
    }
}

#[test]
fn each_viewer_lists_exactly_the_uploads_and_reports_the_rules_give_them() {
    let w = world();
    let env = &w.env;
    let id = w.upload;
    let book = format!("{BRANCH_WITH}.xlsx");
    let everything = vec![
        "summary.xlsx".to_string(),
        "summary.json".into(),
        "escalations.xlsx".into(),
        book.clone(),
        format!("{UPLOADER}.xlsx"),
    ];
    for (p, auth) in &w.bearer {
        let Some(auth) = auth else { continue };
        let listed: Vec<i64> = env
            .get("/api/v1/uploads", Some(auth))
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_i64().unwrap())
            .collect();
        let sees = Who::UploadViewers.includes(*p);
        assert_eq!(listed.contains(&id), sees, "{p:?} lists {listed:?}");
        let mut reports: Vec<String> =
            match env.get(&format!("/api/v1/uploads/{id}/reports"), Some(auth)) {
                r if r.status == 200 => r
                    .json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["name"].as_str().unwrap().to_string())
                    .collect(),
                _ => Vec::new(),
            };
        reports.sort();
        let mut want: Vec<String> = match p {
            Own | Parent | Grandparent => everything.clone(),
            ChildWith => vec![book.clone()],
            _ => Vec::new(),
        };
        want.sort();
        assert_eq!(reports, want, "{p:?}");
        // The page shows the same.
        let page = env.get(
            &format!("/uploads/{id}"),
            w.cookie.iter().find(|(q, _)| q == p).unwrap().1.as_ref(),
        );
        for name in &everything {
            let shown = page.text().contains(&format!("data-report=\"{name}\""));
            assert_eq!(
                shown,
                want.contains(name),
                "{p:?} page shows {name}: {shown}"
            );
        }
    }
    // 完成情况 drills down a level at a time; the API and the export give the subtree.
    let gp = w
        .cookie
        .iter()
        .find(|(p, _)| *p == Grandparent)
        .unwrap()
        .1
        .clone();
    let page = env.get("/stats", gp.as_ref()).text();
    assert!(page.contains(PARENT) && !page.contains(UPLOADER), "{page}");
    let api = env.get("/api/v1/stats", gp.as_ref()).text();
    assert!(api.contains(PARENT) && api.contains(UPLOADER) && api.contains(BRANCH_WITH));
    // Operators see the upload and the requests in the metrics.
    let metrics = env.get_operator("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "roster_uploads{status=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "roster_rows_validated_total 8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roster_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/uploads/{id}/reports\",status=\"200\"}"),
        "{metrics}"
    );
    // A branch admin's download is their workbook, cut from the upload's bundle, and
    // holds their rows only.
    let branch = w
        .bearer
        .iter()
        .find(|(p, _)| *p == ChildWith)
        .unwrap()
        .1
        .clone()
        .unwrap();
    let r = env.get(
        &format!("/api/v1/uploads/{id}/reports/{}", web::api::percent(&book)),
        Some(&branch),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert_eq!(
        r.header("content-disposition"),
        Some(
            format!(
                "attachment; filename=\"report.xlsx\"; filename*=UTF-8''{}",
                web::api::percent(&book)
            )
            .as_str()
        )
    );
    let bytes = r.body.clone();
    use calamine::{Reader, open_workbook_auto_from_rs};
    let mut wb = open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let first = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&first).unwrap();
    let branches: Vec<String> = range.rows().skip(1).map(|r| r[9].to_string()).collect();
    assert_eq!(branches, vec![BRANCH_WITH; 2], "{branches:?}");
}
