//! A real headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `scripts/test` installs) driven over the W3C WebDriver protocol: a few calls of JSON
//! over HTTP, enough to type, click, read a page and take screenshots.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// chromedriver and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    pub downloads: PathBuf,
    _profile: tempfile::TempDir,
    _downloads: tempfile::TempDir,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

impl Browser {
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/test installs chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let mut r = agent()
            .post(format!("{base}/session"))
            .send(caps.to_string().as_bytes())
            .unwrap();
        let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            downloads: downloads.path().to_path_buf(),
            _profile: profile,
            _downloads: downloads,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let a = agent();
        let mut r = match (method, body) {
            ("GET", _) => a.get(url).call(),
            ("DELETE", _) => a.delete(url).call(),
            (_, b) => a
                .post(url)
                .send(b.unwrap_or(json!({})).to_string().as_bytes()),
        }
        .unwrap();
        let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
        if v["value"].get("error").is_some() {
            return Err(v["value"].clone());
        }
        Ok(v["value"].clone())
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }

    /// Waits up to 10 s for the address to end with `suffix` (after a click that
    /// navigates), and returns it.
    pub fn wait_url(&self, suffix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url();
            if url.ends_with(suffix) {
                return url;
            }
            assert!(Instant::now() < deadline, "at {url}, not …{suffix}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first element matching a CSS selector, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let mut r = agent()
                .post(url)
                .send(
                    json!({"using": "css selector", "value": css})
                        .to_string()
                        .as_bytes(),
                )
                .unwrap();
            let v: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
            if let Some(id) = v["value"].as_object().and_then(|o| o.values().next())
                && v["value"].get("error").is_none()
            {
                return id.as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no element {css}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn fill(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call("POST", &format!("/element/{el}/clear"), None);
        self.call(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        );
    }

    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.call("POST", &format!("/element/{el}/click"), None);
    }

    /// The text of the first element matching `css`. Pages that follow a running
    /// upload reload themselves: an element that went stale is found again.
    pub fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let el = self.find(css);
            match self.try_call("GET", &format!("/element/{el}/text"), None) {
                Ok(v) => return v.as_str().unwrap().to_string(),
                Err(e) if e["error"] == "stale element reference" && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("text of {css}: {e}"),
            }
        }
    }

    pub fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits, without reloading, until `css`'s text contains `want`: the page a form
    /// posted to has arrived (reloading it would post again).
    pub fn wait_for_text(&self, css: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.text(css).contains(want) {
            assert!(
                Instant::now() < deadline,
                "{css} never read {want}: {}",
                self.text(css)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the page (reloading it) until `css`'s text contains `want`.
    pub fn wait_text(&self, css: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.text(css).contains(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never read {want}: {}",
                self.text(css)
            );
            std::thread::sleep(Duration::from_millis(500));
            self.call("POST", "/refresh", None);
        }
    }

    /// A PNG of the window, saved to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64_png::decode;
        let b64 = self.call("GET", "/screenshot", None);
        let png = decode(b64.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }

    /// The value of one of the browser's cookies for the current site.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.call("GET", "/cookie", None)
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(str::to_string))
    }

    /// Waits for a finished download whose name ends with `suffix`.
    pub fn downloaded(&self, suffix: &str, within: Duration) -> PathBuf {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(entries) = std::fs::read_dir(&self.downloads) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if name.ends_with(suffix) && !name.ends_with(".crdownload") {
                        return e.path();
                    }
                }
            }
            assert!(Instant::now() < deadline, "no download ending {suffix}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = agent()
            .delete(format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64, as WebDriver sends screenshots (no crate needed for this much).
mod base64_png {
    pub fn decode(s: &str) -> Vec<u8> {
        let value = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            } as u32)
        };
        let digits: Vec<u32> = s.bytes().filter_map(value).collect();
        let mut out = Vec::with_capacity(digits.len() * 3 / 4);
        for chunk in digits.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, d)| acc | d << (18 - 6 * i));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend(&bytes[..chunk.len().saturating_sub(1)]);
        }
        out
    }
}
