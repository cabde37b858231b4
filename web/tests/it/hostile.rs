//! Hostile users against the service (issue 31): bursts of guesses, registration floods,
//! big and odd bodies, half-sent requests, invented methods, forged CSRF tokens, and
//! who is named as the client behind a proxy. Each test is named after its case.

use std::net::IpAddr;
use std::time::Duration;

use chrono::NaiveDate;

use crate::harness::{Auth, Env, id_number};

const SCHOOL: &str = "广州市荔湾区第1中学团委";
const BRANCH: &str = "广州市荔湾区第1中学初一1班团支部";
const PASSWORD: &str = "Roster2026pass";

/// Twenty wrong passwords at once and the right one 50 ms later: every guess is counted
/// before its hash is checked, so the account is locked and the right one refused too.
#[test]
fn a_burst_of_wrong_passwords_locks_the_account_before_the_right_one_arrives() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    // Every connection open first, so the twenty go out together, as a script sends them.
    use std::io::{Read, Write};
    let addr = env.base.trim_start_matches("http://").to_string();
    let request = |password: &str| {
        let body = serde_json::json!({"id_number": id, "password": password}).to_string();
        format!(
            "POST /api/v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let mut conns: Vec<std::net::TcpStream> = (0..21)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    for (i, c) in conns.iter_mut().take(20).enumerate() {
        c.write_all(request(&format!("wrong-guess-{i}")).as_bytes())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    conns[20].write_all(request(PASSWORD).as_bytes()).unwrap();
    let statuses: Vec<u16> = conns
        .iter_mut()
        .map(|c| {
            let mut reply = String::new();
            c.read_to_string(&mut reply).unwrap();
            reply[9..12].parse().unwrap()
        })
        .collect();
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    let until = env
        .rt
        .block_on(registry::accounts::locked_until(&env.pool, &id))
        .unwrap();
    assert!(until.is_some(), "the burst locked the account");
    let refused = env
        .audit()
        .iter()
        .filter(|r| r.action == "login_refused")
        .count();
    assert_eq!(refused, 21);
}

fn register(env: &Env, org: &str, code: &str, seq: u32, from: Option<&str>) -> (u16, String) {
    let id = id_number("440103", NaiveDate::from_ymd_opt(1995, 5, 5).unwrap(), seq);
    let mut req = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(env.url("/api/v1/register"))
        .header("content-type", "application/json");
    if let Some(from) = from {
        req = req.header("x-forwarded-for", from);
    }
    let body = serde_json::json!({
        "org": org, "code": code, "name": "李四", "id_number": id,
        "phone": "13900139000", "password": "Register2026x",
    });
    let mut res = req.send(body.to_string().as_bytes()).unwrap();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (res.status().as_u16(), text)
}

fn code_of(env: &Env, org: &str) -> String {
    env.rt
        .block_on(
            sqlx::query_scalar("SELECT reg_code FROM orgs WHERE full_name = $1")
                .bind(org)
                .fetch_one(&env.pool),
        )
        .unwrap()
}

/// Refusals are throttled per client
/// address and per organisation (`429` once ten are on record within 15 minutes, the
/// right code included) and every refusal is audited with the organisation and client.
#[test]
fn registration_checks_the_code_first_and_throttles_refusals_per_client_and_organisation() {
    let env = Env::with_config(web::Config {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..web::Config::default()
    });
    // One client guessing codes.
    for i in 0..10 {
        let (status, body) = register(
            &env,
            BRANCH,
            &format!("guess{i}"),
            20 + i,
            Some("203.0.113.7"),
        );
        assert_eq!(status, 400, "{body}");
    }
    let right = code_of(&env, SCHOOL);
    let (status, body) = register(&env, SCHOOL, &right, 40, Some("203.0.113.7"));
    assert_eq!(status, 429, "the client is throttled: {body}");
    assert!(body.contains("注册尝试过多"), "{body}");
    // Ten refusals for BRANCH came from one client: the organisation is throttled for
    // every client too.
    let (status, _) = register(
        &env,
        BRANCH,
        &code_of(&env, BRANCH),
        41,
        Some("203.0.113.8"),
    );
    assert_eq!(status, 429);
    // Another client, another organisation: heard, and the right code registers.
    let (status, body) = register(&env, SCHOOL, &right, 42, Some("203.0.113.9"));
    assert_eq!(status, 201, "{body}");
    let audit = env.audit();
    let refused: Vec<_> = audit
        .iter()
        .filter(|r| r.action == "register_refused")
        .collect();
    assert_eq!(refused.len(), 12, "{refused:?}");
    assert!(
        refused
            .iter()
            .filter(|r| r.client.as_deref() == Some("203.0.113.7"))
            .count()
            == 11
    );
    assert!(refused.iter().all(|r| r.detail.is_some()));
    assert!(
        audit
            .iter()
            .any(|r| r.action == "register" && r.client.as_deref() == Some("203.0.113.9"))
    );
}

/// Every route but the two upload routes reads at most 64 KiB, whatever the content type
/// says; NUL is refused in every JSON-like type.
#[test]
fn routes_but_uploads_take_64_kib_bodies_whatever_the_content_type() {
    let env = Env::start();
    let limit = web::security::SMALL_BODY;
    // (content type, body bytes, status)
    let fill = |n: usize| {
        let mut b = br#"{"id_number":"1","password":""#.to_vec();
        b.resize(n - 2, b'a');
        b.extend_from_slice(br#""}"#);
        b
    };
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", fill(limit), 401),
        ("application/json", fill(limit + 1), 413),
        ("application/x+json", fill(limit + 1), 413),
        ("text/plain", vec![b'x'; limit + 1], 413),
        (
            "application/x+json",
            br#"{"id_number":"\u0000","password":"x"}"#.to_vec(),
            400,
        ),
        (
            "application/vnd.roster+json",
            br#"{"id_number":"\u0000","password":"x"}"#.to_vec(),
            400,
        ),
        ("text/plain", b"a\0b".to_vec(), 400),
    ];
    for (content_type, body, want) in &table {
        let r = env.post_raw("/api/v1/login", content_type, body);
        assert_eq!(
            r.status,
            *want,
            "{content_type}, {} bytes: {}",
            body.len(),
            r.text()
        );
    }
    // A body with no declared length is cut off at the limit, not read whole.
    let mut req = b"POST /api/v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x+json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        req.extend_from_slice(b"2000\r\n");
        req.extend(std::iter::repeat_n(b'a', 0x2000));
        req.extend_from_slice(b"\r\n");
    }
    let (reply, _) = env.raw(&req, Duration::from_secs(10));
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

/// A connection that sends half a request line is closed once the header-read timeout
/// passes, not held open.
#[test]
fn a_connection_that_never_finishes_its_headers_is_closed() {
    let env = Env::with_config(web::Config {
        header_read_timeout: Duration::from_secs(1),
        ..web::Config::default()
    });
    let (got, took) = env.raw(b"GET /healthz HT", Duration::from_secs(15));
    assert!(took < Duration::from_secs(5), "still open after {took:?}");
    let got = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    // A whole request is answered as usual.
    let (got, _) = env.raw(
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

/// A request whose body stops coming is answered `408` once the request timeout passes.
#[test]
fn a_request_whose_body_stalls_is_answered_408() {
    let env = Env::with_config(web::Config {
        request_timeout: Duration::from_secs(1),
        ..web::Config::default()
    });
    let (got, took) = env.raw(
        b"POST /api/v1/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id_",
        Duration::from_secs(15),
    );
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Invented methods all count as `other`: the metrics do not grow with what clients
/// make up, and they are on the operators' listener only.
#[test]
fn invented_methods_count_as_other_and_metrics_are_for_operators_only() {
    let env = Env::start();
    for i in 0..300 {
        let (got, _) = env.raw(
            format!("M{i}X /api/v1/me HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
            Duration::from_secs(5),
        );
        assert!(!got.is_empty());
    }
    let metrics = env.get_operator("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(!text.contains("M1X") && !text.contains("M299X"), "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
    let series = text
        .lines()
        .filter(|l| l.starts_with("roster_http_request_duration_seconds_count"))
        .count();
    assert!(series <= 3, "{series} series:\n{text}");
    // Public port: only /healthz.
    assert_eq!(env.get("/metrics", None).status, 404);
    assert_eq!(env.get("/readyz", None).status, 404);
    assert_eq!(env.get("/healthz", None).status, 200);
    assert_eq!(env.get_operator("/readyz").status, 200);
    assert_eq!(env.get_operator("/healthz").status, 200);
}

/// The CSRF token is the session's: a token and cookie the client chose itself do not
/// pass, and a new login makes a new token.
#[test]
fn the_csrf_token_is_bound_to_the_session_and_renewed_at_login() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let first = env.login(&id, PASSWORD);
    let code_before = code_of(&env, BRANCH);
    let regenerate = |auth: &Auth| {
        env.post_form(
            "/codes/regenerate",
            Some(auth),
            &[("csrf", auth.csrf()), ("org", BRANCH)],
        )
        .status
    };
    // The attack of the issue: a real session, a cookie and form token of the client's
    // own choosing.
    let forged = Auth::Cookie {
        session: first.clone(),
        csrf: "e".repeat(64),
    };
    assert_eq!(regenerate(&forged), 403);
    assert_eq!(
        env.post_json(
            "/api/v1/orgs/codes/regenerate",
            Some(&forged),
            &serde_json::json!({"org": BRANCH})
        )
        .status,
        403
    );
    assert_eq!(code_of(&env, BRANCH), code_before, "nothing changed");
    // The session's own token passes, and the page carries it.
    let own = Auth::cookie(&first);
    assert!(env.get("/codes", Some(&own)).text().contains(own.csrf()));
    assert_eq!(regenerate(&own), 303);
    assert_ne!(code_of(&env, BRANCH), code_before);
    // A new login, a new token: the old one does not pass with the new session.
    let second = env.login(&id, PASSWORD);
    assert_ne!(
        web::auth::csrf_for_session(&first),
        web::auth::csrf_for_session(&second)
    );
    let stale = Auth::Cookie {
        session: second.clone(),
        csrf: web::auth::csrf_for_session(&first),
    };
    assert_eq!(regenerate(&stale), 403);
    assert_eq!(regenerate(&Auth::cookie(&second)), 303);
}

/// Behind HTTPS cookie names take the `__Host-` prefix; no cookie is ever set on a
/// response a cache may keep.
#[test]
fn cookies_take_the_host_prefix_when_secure_and_cacheable_responses_set_none() {
    // The session cookie's name is checked where the login sets it
    // (`security::responses_carry_the_security_headers_and_cookie_flags`).
    for (secure, csrf) in [(false, "roster_csrf="), (true, "__Host-roster_csrf=")] {
        let env = Env::with_config(web::Config {
            secure_cookies: secure,
            ..web::Config::default()
        });
        let page = env.get("/login", None);
        assert!(
            page.headers_named("set-cookie")
                .iter()
                .any(|c| c.starts_with(csrf)),
            "{:?}",
            page.headers
        );
        for path in ["/static/app.js", "/static/app.css"] {
            let r = env.get(path, None);
            assert_eq!(r.status, 200);
            assert!(r.header("cache-control").unwrap().contains("public"));
            assert!(
                r.headers_named("set-cookie").is_empty(),
                "{path}: {:?}",
                r.headers
            );
        }
    }
}

/// Logging out, by the API or the page, is on the audit trail.
#[test]
fn logout_is_audited() {
    let env = Env::start();
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let api = env.login(&id, PASSWORD);
    let r = env.post_json(
        "/api/v1/logout",
        Some(&Auth::Bearer(api)),
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 204);
    let page = env.login(&id, PASSWORD);
    let auth = Auth::cookie(&page);
    let r = env.post_form("/logout", Some(&auth), &[("csrf", auth.csrf())]);
    assert_eq!(r.status, 303);
    let logouts = env
        .audit()
        .into_iter()
        .filter(|r| r.action == "logout")
        .count();
    assert_eq!(logouts, 2);
}

/// The client's address is the peer's, unless the peer is a trusted proxy: then the
/// nearest untrusted hop of `X-Forwarded-For`.
#[test]
fn the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let proxy = "192.0.2.10";
    // (peer, trusted proxies, X-Forwarded-For, client)
    let table: &[(&str, &[&str], Option<&str>, &str)] = &[
        ("198.51.100.1", &[], Some("203.0.113.5"), "198.51.100.1"),
        (
            "198.51.100.1",
            &[proxy],
            Some("203.0.113.5"),
            "198.51.100.1",
        ),
        (proxy, &[proxy], Some("203.0.113.5"), "203.0.113.5"),
        (proxy, &[proxy], Some("1.2.3.4, 203.0.113.5"), "203.0.113.5"),
        (
            proxy,
            &[proxy, "192.0.2.11"],
            Some("203.0.113.5, 192.0.2.11"),
            "203.0.113.5",
        ),
        (proxy, &[proxy], Some("not-an-address"), proxy),
        (proxy, &[proxy], None, proxy),
        (
            "2001:db8::1",
            &["2001:db8::1"],
            Some("2001:db8::2"),
            "2001:db8::2",
        ),
    ];
    for (peer, trusted, xff, want) in table {
        let mut headers = axum::http::HeaderMap::new();
        if let Some(x) = xff {
            headers.insert("x-forwarded-for", x.parse().unwrap());
        }
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
        let got = web::auth::client_address(ip(peer), &headers, &trusted);
        assert_eq!(got, ip(want), "{peer} {trusted:?} {xff:?}");
    }
    // End to end: the audit trail names the forwarded client only behind a trusted proxy.
    for (trusted, want) in [
        (vec![], "127.0.0.1"),
        (vec![ip("127.0.0.1")], "203.0.113.5"),
    ] {
        let env = Env::with_config(web::Config {
            trusted_proxies: trusted,
            ..web::Config::default()
        });
        let r = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(env.url("/api/v1/login"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", "203.0.113.5")
            .send(br#"{"id_number":"110101199001010011","password":"x"}"#)
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let audit = env.audit();
        assert_eq!(audit[0].client.as_deref(), Some(want));
    }
}

/// A handler that cannot finish (the sessions table locked by someone else) is answered
/// `503` with `Retry-After` once the request timeout passes; its work is dropped.
#[test]
fn a_request_whose_handler_stalls_is_answered_503() {
    let env = Env::with_config(web::Config {
        request_timeout: Duration::from_secs(1),
        ..web::Config::default()
    });
    let id = env.admin(SCHOOL, 1, PASSWORD, false);
    let token = Auth::Bearer(env.login(&id, PASSWORD));
    let mut lock = env.rt.block_on(env.pool.begin()).unwrap();
    env.rt
        .block_on(sqlx::query("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE").execute(&mut *lock))
        .unwrap();
    let clock = std::time::Instant::now();
    let r = env.get("/api/v1/me", Some(&token));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(
        clock.elapsed() < Duration::from_secs(5),
        "{:?}",
        clock.elapsed()
    );
    env.rt.block_on(lock.commit()).unwrap();
    assert_eq!(env.get("/api/v1/me", Some(&token)).status, 200);
}
