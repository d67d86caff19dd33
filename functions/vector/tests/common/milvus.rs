//! A real milvus-lite server for tests: `milvus-lite server --data-dir <temp> --host 127.0.0.1
//! --port <port>`, killed (and its data removed) on drop. `pip install milvus-lite==3.2.2
//! pymilvus` provides it; without it tests skip (fail under `WEFT_TEST_STRICT=1`). Shared by
//! fn-vector's tests and benches and the CLI's AI tests (`#[path]`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct MilvusLite {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl MilvusLite {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts a server on any free port, or skips (returns `None`) when `milvus-lite` is not
    /// installed.
    pub fn start() -> Option<Self> {
        Self::start_on(0..=0, "fn-vector-milvus")
    }

    /// Starts a server on the first free port of `ports` (`0..=0`: any), its data in a temp
    /// folder named after `prefix`, or skips (`None`) when `milvus-lite` is not installed. Starts
    /// are one at a time (tests run in parallel), so two never pick the same port.
    pub fn start_on(ports: std::ops::RangeInclusive<u16>, prefix: &str) -> Option<Self> {
        static STARTING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let installed = Command::new("milvus-lite")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            test_skip::skip("milvus-lite is not installed (python3 -m pip install milvus-lite==3.2.2 pymilvus)");
            return None;
        }
        // A free port: bind, read it, release it. Another process could take it in between; the
        // start below would then fail loudly, not silently use someone else's server.
        let port = ports
            .clone()
            .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok().and_then(|l| l.local_addr().ok()).map(|a| a.port()))
            .unwrap_or_else(|| panic!("no free port for milvus-lite in {ports:?}"));
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("milvus-lite")
            .args(["server", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                panic!("milvus-lite exited ({status}) before listening:\n{log}");
            }
            let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            if log.contains("listening") && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            assert!(Instant::now() < deadline, "milvus-lite did not listen within 120 s:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for MilvusLite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
