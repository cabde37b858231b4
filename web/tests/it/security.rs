//! Accounts and the service's defences: CSRF, cookie flags and headers, lockout that
//! reads the same as a wrong account, Argon2id hashes, uploads refused while they
//! stream, the audit trail, forced password changes, registration codes.

use std::io::{Read, Write};
use std::time::Duration;

use chrono::NaiveDate;

use crate::harness::{Auth, Env, id_number};

const SCHOOL: &str = "广州市荔湾区第1中学团委";
const BRANCH: &str = "广州市荔湾区第1中学初一1班团支部";
const PASSWORD: &str = "Roster2026pass";

#[test]
fn forms_and_cookie_api_calls_without_the_csrf_token_are_refused() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let token = env.login(&id, PASSWORD);
    let auth = Auth::cookie(&token);
    // A page form: the right token passes, a wrong or missing one is refused.
    let code_form = |csrf: &str| {
        env.post_form(
            "/codes/regenerate",
            Some(&auth),
            &[("csrf", csrf), ("org", BRANCH)],
        )
    };
    assert_eq!(code_form(&"cd".repeat(32)).status, 403);
    assert_eq!(code_form("").status, 403);
    assert_eq!(code_form(auth.csrf()).status, 303);
    // The login form too (no session yet: the browser's own CSRF cookie).
    let anon_csrf = Auth::Cookie {
        session: "none".into(),
        csrf: "ef".repeat(32),
    };
    let login_form = |csrf: &str| {
        env.post_form(
            "/login",
            Some(&anon_csrf),
            &[("csrf", csrf), ("id_number", &id), ("password", PASSWORD)],
        )
    };
    assert_eq!(login_form("0".repeat(64).as_str()).status, 403);
    let ok = login_form(anon_csrf.csrf());
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert_eq!(ok.header("location"), Some("/"));
    // A multipart upload form without its token is refused before the file is read.
    let r = env.post_multipart("/upload", Some(&auth), &[("csrf", "x")], ("a.xlsx", b"PK"));
    assert_eq!(r.status, 403);
    // The API with the session cookie needs the header; with a bearer token it does not.
    let no_header = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(env.url("/api/v1/orgs/codes/regenerate"))
        .header(
            "cookie",
            format!("roster_session={token}; roster_csrf={}", auth.csrf()),
        )
        .header("content-type", "application/json")
        .send(serde_json::json!({"org": BRANCH}).to_string().as_bytes())
        .unwrap();
    assert_eq!(no_header.status().as_u16(), 403);
    let body = serde_json::json!({"org": BRANCH});
    assert_eq!(
        env.post_json("/api/v1/orgs/codes/regenerate", Some(&auth), &body)
            .status,
        200
    );
    assert_eq!(
        env.post_json(
            "/api/v1/orgs/codes/regenerate",
            Some(&Auth::Bearer(token)),
            &body
        )
        .status,
        200
    );
}

#[test]
fn responses_carry_the_security_headers_and_cookie_flags() {
    for secure in [false, true] {
        let env = Env::with_config(web::Config {
            secure_cookies: secure,
            ..web::Config::default()
        });
        let id = env.admin(SCHOOL, 1, PASSWORD, false);
        let r = env.post_json(
            "/api/v1/login",
            None,
            &serde_json::json!({"id_number": id, "password": PASSWORD}),
        );
        let cookie = r.header("set-cookie").unwrap().to_string();
        // Behind HTTPS the `__Host-` prefix: Secure, Path=/, no Domain.
        let session = if secure {
            "__Host-roster_session="
        } else {
            "roster_session="
        };
        assert!(cookie.starts_with(session), "{cookie}");
        assert!(!cookie.contains("Domain"), "{cookie}");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        let page = env.get("/login", None);
        let csrf = page.headers_named("set-cookie");
        assert!(
            csrf.iter().any(|c| c
                .starts_with(&format!("{}=", web::auth::csrf_cookie_name(secure)))
                && c.contains("HttpOnly")
                && c.contains("SameSite=Lax")),
            "{csrf:?}"
        );
        for path in ["/login", "/api/v1/me", "/api/v1/openapi.json", "/nowhere"] {
            let r = env.get(path, None);
            let csp = r.header("content-security-policy").unwrap_or_default();
            for part in [
                "default-src 'none'",
                "script-src 'self'",
                "style-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(part), "{path}: {csp}");
            }
            assert!(
                !csp.contains("unsafe-inline") && !csp.contains("http"),
                "{csp}"
            );
            assert_eq!(
                r.header("x-content-type-options"),
                Some("nosniff"),
                "{path}"
            );
            assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        }
        // Pages load nothing from elsewhere.
        let html = env.get("/login", None).text();
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"));
    }
}

#[test]
fn five_wrong_passwords_lock_the_account_and_refusals_read_the_same() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let login = |who: &str, pw: &str| {
        env.post_json(
            "/api/v1/login",
            None,
            &serde_json::json!({"id_number": who, "password": pw}),
        )
    };
    let unknown = id_number("440103", NaiveDate::from_ymd_opt(1991, 2, 3).unwrap(), 7);
    let stranger = login(&unknown, "whatever1");
    assert_eq!(stranger.status, 401);
    for attempt in 1..=5 {
        let r = login(&id, "wrong-password-1");
        assert_eq!(r.status, 401, "attempt {attempt}");
        assert_eq!(r.body, stranger.body, "attempt {attempt}");
    }
    // Locked: the right password is refused, in the same words.
    let right = login(&id, PASSWORD);
    assert_eq!(right.status, 401);
    assert_eq!(right.body, stranger.body);
    let until = env
        .rt
        .block_on(registry::accounts::locked_until(&env.pool, &id))
        .unwrap()
        .expect("locked");
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(14) && left <= chrono::Duration::minutes(15),
        "{left}"
    );
    // A minute before the lock ends it still holds; once it has ended the right password works.
    let shift = |minutes: i64| {
        env.rt
            .block_on(
                sqlx::query(
                    "UPDATE admins SET locked_until = now() + make_interval(mins => $2::int)
                     WHERE id_number = $1",
                )
                .bind(&id)
                .bind(minutes as i32)
                .execute(&env.pool),
            )
            .unwrap();
    };
    shift(1);
    assert_eq!(login(&id, PASSWORD).status, 401);
    shift(-1);
    assert_eq!(login(&id, PASSWORD).status, 200);
    // The page says the same to an unknown account and a wrong password.
    let page = |who: &str, pw: &str| {
        let auth = Auth::Cookie {
            session: "none".into(),
            csrf: "ab".repeat(32),
        };
        env.post_form(
            "/login",
            Some(&auth),
            &[("csrf", auth.csrf()), ("id_number", who), ("password", pw)],
        )
    };
    let (a, b) = (page(&unknown, "x1234567"), page(&id, "x1234567"));
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(a.body, b.body);
    assert!(a.text().contains(web::api::LOGIN_REFUSED));
}

#[test]
fn passwords_are_stored_as_argon2id_and_sessions_as_digests() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let token = env.login(&id, PASSWORD);
    let (hash, digests): (String, Vec<String>) = env.rt.block_on(async {
        (
            sqlx::query_scalar("SELECT password_hash FROM admins WHERE id_number = $1")
                .bind(&id)
                .fetch_one(&env.pool)
                .await
                .unwrap(),
            sqlx::query_scalar("SELECT token_sha256 FROM sessions")
                .fetch_all(&env.pool)
                .await
                .unwrap(),
        )
    });
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
    assert!(registry::accounts::verify_password(&hash, PASSWORD));
    assert!(!registry::accounts::verify_password(&hash, "Roster2026pas"));
    assert_eq!(digests.len(), 1);
    assert_ne!(digests[0], token);
    assert_eq!(digests[0].len(), 64);
}

/// Writes an upload of `total` bytes, its length declared or not (chunked), until the
/// server stops reading; the status line of the answer.
fn stream_upload(env: &Env, token: &str, total: usize, declared: bool) -> String {
    let addr = env.base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let boundary = "xyzBOUNDARY";
    let head = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.xlsx\"\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = if declared {
        format!("content-length: {}", head.len() + total + tail.len())
    } else {
        "transfer-encoding: chunked".to_string()
    };
    write!(
        s,
        "POST /api/v1/uploads HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\n{length}\r\n\r\n"
    )
    .unwrap();
    let chunk = |s: &mut std::net::TcpStream, data: &[u8]| -> std::io::Result<()> {
        if !declared {
            write!(s, "{:x}\r\n", data.len())?;
        }
        s.write_all(data)?;
        if !declared {
            s.write_all(b"\r\n")?;
        }
        Ok(())
    };
    chunk(&mut s, head.as_bytes()).unwrap();
    let block = vec![b'A'; 64 << 10];
    let mut sent = 0;
    while sent < total {
        if chunk(&mut s, &block).is_err() {
            break; // the server stopped reading: refused mid-stream
        }
        sent += block.len();
    }
    if sent >= total {
        let _ = chunk(&mut s, tail.as_bytes());
        if !declared {
            let _ = s.write_all(b"0\r\n\r\n");
        }
    }
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn an_upload_over_the_limit_is_refused_while_it_streams_and_nothing_is_stored() {
    let env = Env::with_config(web::Config {
        max_upload_bytes: 1 << 20,
        ..web::Config::default()
    });
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let token = env.login(&id, PASSWORD);
    // Declared too large: refused before the body is read; undeclared (chunked):
    // refused once the limit is passed.
    for declared in [true, false] {
        let status = stream_upload(&env, &token, 4 << 20, declared);
        assert!(status.contains("413"), "declared {declared}: {status}");
    }
    // Under the limit but not a roster: accepted as an upload (the worker judges it).
    let small = env.post_multipart(
        "/api/v1/uploads",
        Some(&Auth::Bearer(token.clone())),
        &[],
        ("small.xlsx", &vec![7u8; 1000]),
    );
    assert_eq!(small.status, 201, "{}", small.text());
    let refused = env.post_multipart(
        "/api/v1/uploads",
        Some(&Auth::Bearer(token.clone())),
        &[],
        ("empty.xlsx", b""),
    );
    assert_eq!(refused.status, 400);
    let (uploads, objects): (i64, Vec<String>) = env.rt.block_on(async {
        (
            sqlx::query_scalar("SELECT count(*) FROM uploads")
                .fetch_one(&env.pool)
                .await
                .unwrap(),
            env.storage.list("uploads/").await.unwrap(),
        )
    });
    assert_eq!(
        (uploads, objects.len()),
        (1, 1),
        "only the small one: {objects:?}"
    );
}

#[test]
fn logins_uploads_and_downloads_are_audited_without_personal_data() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let bad = env.post_json(
        "/api/v1/login",
        None,
        &serde_json::json!({"id_number": id, "password": "nope12345"}),
    );
    assert_eq!(bad.status, 401);
    let auth = Auth::Bearer(env.login(&id, PASSWORD));
    let roster = crate::access::roster_bytes();
    let r = env.post_multipart(
        "/api/v1/uploads",
        Some(&auth),
        &[("template", "members")],
        ("名单.xlsx", &roster),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let upload = r.json()["id"].as_i64().unwrap();
    // The same content again: the same upload.
    let again = env.post_multipart(
        "/api/v1/uploads",
        Some(&auth),
        &[("template", "members")],
        ("again.xlsx", &roster),
    );
    assert_eq!(
        (again.status, again.json()["id"].as_i64()),
        (200, Some(upload))
    );
    env.process_uploads(Duration::from_secs(120));
    let d = env.get(
        &format!("/api/v1/uploads/{upload}/reports/summary.xlsx"),
        Some(&auth),
    );
    assert_eq!(d.status, 302);
    let rows = env.audit();
    let admin: i64 = env
        .rt
        .block_on(
            sqlx::query_scalar("SELECT id FROM admins WHERE id_number = $1")
                .bind(&id)
                .fetch_one(&env.pool),
        )
        .unwrap();
    let has = |action: &str, detail: Option<&str>| {
        rows.iter().any(|r| {
            r.action == action
                && r.admin_id == Some(admin)
                && r.client.as_deref() == Some("127.0.0.1")
                && (detail.is_none() || r.detail.as_deref() == detail)
        })
    };
    assert!(has("login_refused", None), "{rows:?}");
    assert!(has("login", None), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.action == "upload" && r.upload_id == Some(upload))
    );
    assert!(has("download", Some("summary.xlsx")), "{rows:?}");
    for r in &rows {
        let detail = r.detail.clone().unwrap_or_default();
        assert!(!detail.contains(&id), "{detail}");
    }
}

#[test]
fn a_bootstrapped_admin_changes_the_initial_password_before_anything_else() {
    let env = Env::start();
    let id = id_number("440103", NaiveDate::from_ymd_opt(1990, 6, 1).unwrap(), 42);
    let initial = &id[10..];
    env.add_admin(SCHOOL, &id, "王老师", initial, true);
    let r = env.post_json(
        "/api/v1/login",
        None,
        &serde_json::json!({"id_number": id, "password": initial}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["must_change_password"], true);
    let auth = Auth::Bearer(r.json()["token"].as_str().unwrap().to_string());
    assert_eq!(
        env.get("/api/v1/me", Some(&auth)).json()["must_change_password"],
        true
    );
    assert_eq!(env.get("/api/v1/uploads", Some(&auth)).status, 403);
    assert_eq!(env.get("/api/v1/orgs/codes", Some(&auth)).status, 403);
    let cookie = Auth::cookie(match &auth {
        Auth::Bearer(t) => t,
        _ => unreachable!(),
    });
    let home = env.get("/", Some(&cookie));
    assert_eq!(
        (home.status, home.header("location")),
        (303, Some("/password"))
    );
    // The initial password is not a new password.
    let same = env.post_json(
        "/api/v1/password",
        Some(&auth),
        &serde_json::json!({"old": initial, "new": initial}),
    );
    assert_eq!(same.status, 400);
    let ok = env.post_json(
        "/api/v1/password",
        Some(&auth),
        &serde_json::json!({"old": initial, "new": PASSWORD}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(env.get("/api/v1/uploads", Some(&auth)).status, 200);
    assert_eq!(
        env.get("/api/v1/me", Some(&auth)).json()["must_change_password"],
        false
    );
}

#[test]
fn registration_takes_the_code_its_parent_sees_and_at_most_two_admins() {
    let env = Env::start();
    let parent = env.admin(SCHOOL, 1, PASSWORD, false);
    let auth = Auth::Bearer(env.login(&parent, PASSWORD));
    let codes = env.get("/api/v1/orgs/codes", Some(&auth)).json();
    let code = codes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["org"] == BRANCH)
        .expect("the branch is a direct child")["code"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        code.len() == 8 && code.chars().all(|c| c.is_ascii_alphanumeric()),
        "{code}"
    );
    let register = |seq: u32, code: &str| {
        env.post_json(
            "/api/v1/register",
            None,
            &serde_json::json!({
                "org": BRANCH, "code": code, "name": "李同学",
                "id_number": id_number("440103", NaiveDate::from_ymd_opt(2005, 5, 5).unwrap(), seq),
                "phone": "13700137000", "password": PASSWORD,
            }),
        )
    };
    assert_eq!(register(1, "WRONG123").status, 400);
    // Codes are case-sensitive.
    let swapped: String = code
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    if swapped != code {
        assert_eq!(register(1, &swapped).status, 400);
    }
    let first = register(1, &code);
    assert_eq!(first.status, 201, "{}", first.text());
    // Regenerating invalidates the old code.
    let fresh = env.post_json(
        "/api/v1/orgs/codes/regenerate",
        Some(&auth),
        &serde_json::json!({"org": BRANCH}),
    );
    assert_eq!(fresh.status, 200);
    let fresh = fresh.json()["code"].as_str().unwrap().to_string();
    assert_ne!(fresh, code);
    assert_eq!(register(2, &code).status, 400);
    assert_eq!(register(2, &fresh).status, 201);
    // A third admin is refused, with a clear message; so is the same person again.
    let third = register(3, &fresh);
    assert_eq!(third.status, 409, "{}", third.text());
    assert!(
        third.json()["error"]
            .as_str()
            .unwrap()
            .contains("2名管理员")
    );
    let admins: i64 = env
        .rt
        .block_on(
            sqlx::query_scalar(
                "SELECT count(*) FROM admins a JOIN orgs o ON o.id = a.org_id WHERE o.full_name = $1",
            )
            .bind(BRANCH)
            .fetch_one(&env.pool),
        )
        .unwrap();
    assert_eq!(admins, 2);
    // A bad ID number: a clear refusal naming the field.
    let bad_id = env.post_json(
        "/api/v1/register",
        None,
        &serde_json::json!({"org": BRANCH, "code": fresh, "name": "李同学", "id_number": "440103200505050000",
            "phone": "13700137000", "password": PASSWORD}),
    );
    assert_eq!(bad_id.status, 400);
    assert!(
        bad_id.json()["error"]
            .as_str()
            .unwrap()
            .contains("身份证号码"),
        "{}",
        bad_id.text()
    );
    // A sibling school's admin does not see the branch's code.
    let other = env.admin("广州市荔湾区第2中学团委", 9, PASSWORD, false);
    let other_auth = Auth::Bearer(env.login(&other, PASSWORD));
    let theirs = env.get("/api/v1/orgs/codes", Some(&other_auth)).json();
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["org"] != BRANCH)
    );
    let steal = env.post_json(
        "/api/v1/orgs/codes/regenerate",
        Some(&other_auth),
        &serde_json::json!({"org": BRANCH}),
    );
    assert_eq!(steal.status, 404);
}

#[test]
fn text_with_nul_is_a_bad_request_wherever_it_comes() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let auth = Auth::Bearer(env.login(&id, PASSWORD));
    let nul = serde_json::json!({"org": "a\u{0}b"});
    for (what, r) in [
        ("query", env.get("/api/v1/stats?org=%00%5E", Some(&auth))),
        (
            "path",
            env.get("/api/v1/uploads/1/reports/a%00.xlsx", Some(&auth)),
        ),
        (
            "json",
            env.post_json("/api/v1/orgs/codes/regenerate", Some(&auth), &nul),
        ),
        (
            "login",
            env.post_json(
                "/api/v1/login",
                None,
                &serde_json::json!({"id_number": "\u{0}", "password": "x"}),
            ),
        ),
        (
            "form",
            env.post_form(
                "/login",
                None,
                &[("csrf", "x"), ("id_number", "\u{0}"), ("password", "x")],
            ),
        ),
    ] {
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains("NUL"),
            "{what}"
        );
    }
    // The same requests without NUL are answered as usual.
    assert_eq!(env.get("/api/v1/stats?org=%5E", Some(&auth)).status, 404);
}
