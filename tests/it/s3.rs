//! An S3-compatible server (`s3s-fs`) on a free loopback port, for the service tests:
//! shared by the root tests and the web crate's (`#[path]`), killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "roster-test";
pub const ACCESS_KEY: &str = "roster";
pub const SECRET_KEY: &str = "roster-secret";

/// An `s3s-fs` server on loopback, killed on drop.
pub struct S3 {
    child: Option<Child>,
    /// The address it listens on (loopback unless a test's hosts need another).
    pub host: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

fn s3s_fs() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = Path::new(&home).join(".cargo/bin/s3s-fs");
    if cargo_bin.exists() {
        cargo_bin
    } else {
        "s3s-fs".into()
    }
}

impl S3 {
    pub fn start() -> S3 {
        S3::start_on("127.0.0.1")
    }

    /// On an address of this machine's (a test host's bridge, say).
    pub fn start_on(host: &str) -> S3 {
        let port = TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s3 = S3 {
            child: None,
            host: host.to_string(),
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        s3.resume();
        s3
    }

    /// (Re)starts the server on the same port and folder.
    pub fn resume(&mut self) {
        let child = Command::new(s3s_fs())
            .args(["--host", &self.host, "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs is installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((self.host.as_str(), self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGSTOP: the server keeps its port and accepts connections but answers nothing,
    /// as a host that was lost mid-request.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`S3::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill {sig}");
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The endpoint, as `AWS_ENDPOINT_URL` gives it.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The AWS-convention environment of this server.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}
