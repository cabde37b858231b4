//! Workers on separate hosts (issue 31): network namespaces make three hosts on one
//! machine — the data host (this namespace: PostgreSQL and the S3-compatible server on
//! a bridge) and one worker in each of two namespaces, joined to the bridge by a veth
//! pair. A test cuts a host's link (the veth's end on the bridge goes down: packets are
//! dropped, nothing is refused) and heals it. Needs root, as CI has.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::s3::S3;
use super::service::{
    PrivatePg, Worker, orgs_import, sample, status, submit, submit_sample_with_orgs, wait_final,
    wait_for_copy,
};
use super::setup_db;

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The bridge of the data host and a namespace per worker host, removed on drop.
struct Hosts {
    tag: String,
    /// The data host's address on the bridge.
    data: String,
    /// The bridge's network, as PostgreSQL's pg_hba takes it.
    net: String,
    workers: usize,
}

impl Hosts {
    fn new(workers: usize) -> Hosts {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::Relaxed)) % 200;
        let tag = format!("{n:03}");
        let subnet = format!("10.231.{}", 20 + n);
        let hosts = Hosts {
            tag: tag.clone(),
            data: format!("{subnet}.1"),
            net: format!("{subnet}.0/24"),
            workers,
        };
        // Leftovers of a run that died: gone first.
        hosts.remove();
        let bridge = hosts.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("{}/24", hosts.data), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        for w in 1..=workers {
            let (ns, outer, inner) = (hosts.ns(w), hosts.outer(w), hosts.inner(w));
            ip(&["netns", "add", &ns]);
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            ip(&["link", "set", &inner, "netns", &ns]);
            ip(&["link", "set", &outer, "master", &bridge, "up"]);
            let addr = format!("{subnet}.{}/24", 10 + w);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        hosts
    }

    fn bridge(&self) -> String {
        format!("rsbr{}", self.tag)
    }

    fn ns(&self, w: usize) -> String {
        format!("roster-{}-w{w}", self.tag)
    }

    fn outer(&self, w: usize) -> String {
        format!("rso{}w{w}", self.tag)
    }

    fn inner(&self, w: usize) -> String {
        format!("rsi{}w{w}", self.tag)
    }

    /// Cuts worker host `w` off the network (its packets are dropped).
    fn cut(&self, w: usize) {
        ip(&["link", "set", &self.outer(w), "down"]);
    }

    fn heal(&self, w: usize) {
        ip(&["link", "set", &self.outer(w), "up"]);
    }

    /// A worker process on host `w`, talking to the data host.
    fn worker(&self, w: usize, s3: &S3, pg: &PrivatePg, extra: &[(&str, &str)]) -> Worker {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns(w),
            env!("CARGO_BIN_EXE_roster"),
            "worker",
        ])
        .env("DATABASE_URL", pg.url_on_host())
        .env("ROSTER_BUCKET", super::s3::BUCKET)
        .envs(s3.env())
        .env("ROSTER_AS_OF", super::AS_OF)
        .env("ROSTER_HEARTBEAT_SECS", "1")
        .env("ROSTER_JOB_BACKOFF_MS", "300")
        .env("ROSTER_STATS_SCHEDULE", "off")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some(dir) = std::env::var_os("ROSTER_TEST_WORKER_LOG") {
            let file =
                std::fs::File::create(Path::new(&dir).join(format!("{}-w{w}.log", self.tag)))
                    .unwrap();
            c.stderr(file).env("RUST_LOG", "info");
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        Worker(c.spawn().unwrap())
    }

    fn remove(&self) {
        for w in 1..=self.workers.max(2) {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(w)])
                .output();
            let _ = Command::new("ip")
                .args(["link", "del", &self.outer(w)])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .output();
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Two worker hosts and the data host: a PostgreSQL cluster and s3s-fs on the bridge,
/// the registry set up; and a pool on it.
async fn data_host() -> (Hosts, PrivatePg, S3, sqlx::PgPool) {
    let hosts = Hosts::new(2);
    let pg = PrivatePg::start_on(Some((&hosts.data, &hosts.net)));
    setup_db(&pg.url()).await;
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let s3 = S3::start_on(&hosts.data);
    (hosts, pg, s3, pool)
}

/// The objects stored under an upload's reports, by key.
fn report_objects(s3: &S3, id: i64) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let base = s3.dir.path().join(super::s3::BUCKET);
    let mut out = Vec::new();
    walk(&base.join("reports").join(id.to_string()), &base, &mut out);
    out.sort();
    out
}

fn report_keys(s: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = s["report_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

async fn people(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT id_number) FROM people")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A worker's host is cut off in the middle of a 100,000-row job (its COPY streaming).
/// The other worker takes the job over and finishes it once, with exact counts and one
/// set of reports. The cut worker, reconnected, writes nothing more for that job.
#[sqlx::test(migrations = false)]
async fn a_worker_cut_off_mid_job_is_taken_over_and_writes_nothing_after(_shared: sqlx::PgPool) {
    let clock = Instant::now();
    let (hosts, pg, s3, pool) = data_host().await;
    let url = pg.url();
    let (id, _dir) = submit_sample_with_orgs(&s3, &url, 100_000, 31);
    let attempts = [("ROSTER_JOB_ATTEMPTS", "20")];
    let first = hosts.worker(1, &s3, &pg, &attempts);
    wait_for_copy(&pool).await;
    hosts.cut(1);
    let cut_at = Instant::now();
    let second = hosts.worker(2, &s3, &pg, &attempts);
    let s = wait_final(&s3, &url, id, Duration::from_secs(300));
    let taken_over_s = cut_at.elapsed().as_secs_f64();
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["attempts"], 2, "the second worker's attempt: {s}");
    assert_eq!(s["rows_total"], 100_000);
    let (stored, distinct) = people(&pool).await;
    assert_eq!(stored, distinct);
    assert_eq!(stored, s["rows_valid"].as_i64().unwrap(), "{s}");
    // The cut worker comes back: it finds the job taken over and stops; its own
    // reports (if any reached the store) are removed, the winner's stay.
    hosts.heal(1);
    let healed = Instant::now();
    let keys = report_keys(&s);
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("reports/{id}/2/")))
    );
    loop {
        let objects = report_objects(&s3, id);
        if objects == keys {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(120),
            "objects {objects:?}\nrecorded {keys:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Settled: give the first worker time to act on anything it still held.
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(report_objects(&s3, id), keys, "no report doubled or left");
    let again = status(&s3, &url, id);
    assert_eq!(
        (
            again["status"].clone(),
            again["attempts"].clone(),
            report_keys(&again)
        ),
        (s["status"].clone(), s["attempts"].clone(), keys.clone()),
        "nothing more recorded"
    );
    assert_eq!(people(&pool).await, (stored, distinct));
    for w in [first, second] {
        let stop = Instant::now();
        assert_eq!(w.terminate(), Some(0));
        assert!(stop.elapsed() < Duration::from_secs(30));
    }
    eprintln!(
        "cut mid-job: taken over and finished {taken_over_s:.1} s after the cut; test {:.1} s",
        clock.elapsed().as_secs_f64()
    );
}

/// The data host is cut off from both workers for 30 s during a run of small uploads:
/// every upload still ends `succeeded`, each loaded once with one set of reports.
#[sqlx::test(migrations = false)]
async fn the_data_host_cut_off_from_both_workers_for_30_s_loses_and_doubles_nothing(
    _shared: sqlx::PgPool,
) {
    let clock = Instant::now();
    let (hosts, pg, s3, pool) = data_host().await;
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let orgs = dir.path().join("orgs.csv");
    let files: Vec<_> = (0..30)
        .map(|i| {
            let name = format!("u{i}.xlsx");
            sample(
                dir.path(),
                &name,
                200,
                500 + i,
                (i == 0).then_some(orgs.as_path()),
            )
        })
        .collect();
    orgs_import(&s3, &url, &orgs);
    let ids: Vec<i64> = files.iter().map(|f| submit(&s3, &url, f).0).collect();
    let extra = [("ROSTER_JOB_ATTEMPTS", "30")];
    let workers = [
        hosts.worker(1, &s3, &pg, &extra),
        hosts.worker(2, &s3, &pg, &extra),
    ];
    // Some done, most still to come: cut.
    let finished = |ids: &[i64]| {
        ids.iter()
            .filter(|&&id| {
                ["succeeded", "rejected", "failed"]
                    .contains(&status(&s3, &url, id)["status"].as_str().unwrap())
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished(&ids) < 3 {
        assert!(Instant::now() < deadline, "nothing finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before_cut = finished(&ids);
    hosts.cut(1);
    hosts.cut(2);
    std::thread::sleep(Duration::from_secs(30));
    hosts.heal(1);
    hosts.heal(2);
    let mut valid = 0;
    for &id in &ids {
        let s = wait_final(&s3, &url, id, Duration::from_secs(300));
        assert_eq!(s["status"], "succeeded", "{s}");
        let keys = report_keys(&s);
        assert!(!keys.is_empty(), "{s}");
        valid += s["rows_valid"].as_i64().unwrap();
    }
    // Everything final: what the store holds is exactly what was recorded, once.
    let settle = Instant::now();
    loop {
        let mismatched: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|&id| report_objects(&s3, id) != report_keys(&status(&s3, &url, id)))
            .collect();
        if mismatched.is_empty() {
            break;
        }
        assert!(
            settle.elapsed() < Duration::from_secs(120),
            "uploads {mismatched:?} hold other objects than recorded"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (stored, distinct) = people(&pool).await;
    assert_eq!(stored, distinct, "nobody loaded twice");
    assert_eq!(stored, valid, "nobody lost");
    let attempts: i64 = sqlx::query_scalar("SELECT sum(attempts)::bigint FROM uploads")
        .fetch_one(&pool)
        .await
        .unwrap();
    for w in workers {
        assert_eq!(w.terminate(), Some(0));
    }
    eprintln!(
        "data host cut for 30 s: {before_cut} of {} done before the cut, {attempts} attempts \
         in all; test {:.1} s",
        ids.len(),
        clock.elapsed().as_secs_f64()
    );
}
