//! What the runtime's integration tests share: a `serve` process on 127.0.0.1 and readers of
//! its tables (pyiceberg, from the Python in `CONTRACTC_PYTHON`).

#![allow(dead_code)] // each test crate uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("contract-runtime-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

/// A test that fails must not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `serve` as most tests want it: quick commits, and no limit on the logins tests make
    /// by the thousand (the limits have their own tests, in attack.rs).
    pub fn start(data_dir: &Path, port: u16) -> Server {
        Server::start_with(
            data_dir,
            port,
            &[
                "--commit-interval-ms",
                "300",
                "--dev-mint-scopes",
                "--guests-per-minute",
                "0",
            ],
        )
    }

    /// `serve` with only `args` beyond the address and data directory.
    pub fn start_with(data_dir: &Path, port: u16, args: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("contract-runtime starts");
        Server::adopt(child, data_dir, port)
    }

    /// A `serve` the test spawned itself, once it answers on 127.0.0.1:`port`.
    pub fn adopt(child: Child, data_dir: &Path, port: u16) -> Server {
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            // Ready when /healthz answers (the port is bound before startup work ends).
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return server;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the server did not listen within 60 s; see {}",
            data_dir.with_extension("log").display()
        );
    }

    /// SIGTERM and wait: the server flushes everything acknowledged before exiting.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "graceful shutdown failed: {status}");
    }

    /// The server's resident memory, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// SIGKILL: no chance to flush.
    pub fn crash(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

pub fn python() -> String {
    std::env::var("CONTRACTC_PYTHON").unwrap_or_else(|_| {
        panic!("CONTRACTC_PYTHON is not set: run tests/run.sh, or point it at a Python with pyiceberg installed")
    })
}

/// Runs tests/pyiceberg_check.py with `expectations`; panics with its output on failure, and
/// returns it (what it found) otherwise.
pub fn pyiceberg_check(data_dir: &Path, expectations: Value) -> String {
    let file = data_dir.with_extension("expect.json");
    std::fs::write(&file, expectations.to_string()).expect("write expectations");
    let output = Command::new(python())
        .arg(repo().join("tests/pyiceberg_check.py"))
        .arg(data_dir)
        .arg(&file)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "pyiceberg check failed:\n{text}");
    println!("{text}");
    text
}

/// `serve`'s `/metrics` page.
pub async fn metrics_text(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // Below serve's idle deadline (its header timeout): a pooled connection the server
        // has closed would fail the next request.
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// A guest's token from the dev identity provider (`scope`: the scope to ask for, which
/// `--dev-mint-scopes` lets a guest have).
pub async fn guest_token_with(base: &str, scope: Option<&str>) -> String {
    let query = scope.map(|s| format!("?scope={s}")).unwrap_or_default();
    let login: Value = client()
        .get(format!("{base}/prod/login-as-guest{query}"))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login JSON");
    login["auth_token"].as_str().expect("token").to_string()
}

/// A guest's token with the default scope.
pub async fn guest_token(base: &str) -> String {
    guest_token_with(base, None).await
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time: game_events' `updated_at` format.
pub fn wall_clock(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = contract_corpus::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now as `wall_clock`: the reference client sends local time, and UTC is a valid local time.
pub fn local_now() -> String {
    wall_clock(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64,
    )
}
