//! `RegionTable` across real processes: this binary is its own worker. The supervisor runs it
//! twice more with `TOLLGATE_TOWER_REGION` set; each worker opens the same named region, serves
//! an axum app behind the layer on 127.0.0.1 and prints its address. Real HTTP requests go to
//! both workers, for one key; the admitted total across both is exactly the burst, each
//! admission carries its own count of the one bucket, and the refusals carry the right headers.

#[cfg(unix)]
fn main() {
    if let Ok(path) = std::env::var("TOLLGATE_TOWER_REGION") {
        worker::serve(&path);
    } else {
        supervisor::one_limit_across_two_server_processes();
        println!("one_limit_across_two_server_processes ... ok");
    }
}

#[cfg(not(unix))]
fn main() {}

/// A bucket of 30 that drains one per hour: nothing drains during the test, so the counts are
/// exact whatever the timing.
#[cfg(unix)]
const BURST: u64 = 30;

#[cfg(unix)]
mod worker {
    use std::io::Write;
    use std::net::SocketAddr;

    use axum::routing::get;
    use axum::Router;
    use tollgate::shared::Options;
    use tollgate::table::FullPolicy;
    use tollgate::Quota;
    use tollgate_tower::{Backend, KeyExtractor, Policy, RateLimitLayer, RegionTable};

    /// Opens the region at `path`, prints `created <bool>` and `listening <addr>`, and serves
    /// until killed.
    pub(crate) fn serve(path: &str) {
        let hour = 3_600 * RegionTable::TICKS_PER_SECOND;
        let quota = Quota::new(super::BURST, 1, hour).unwrap();
        let table = RegionTable::buckets(
            path,
            &[quota],
            1_000,
            FullPolicy::FailClosed,
            &Options::new(),
        )
        .unwrap();
        let created = table.created();
        assert_eq!(table.tier(0).map(|t| t.limit), Some(super::BURST));
        let layer = RateLimitLayer::new(
            Policy::new("api", table, KeyExtractor::id_pair("x-app-id", "x-shop-id"))
                .unwrap()
                .call_limit_header(true),
        );
        let app = Router::new()
            .route("/orders", get(|| async { "ok" }))
            .layer(layer);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut out = std::io::stdout().lock();
            writeln!(out, "created {created}").unwrap();
            writeln!(out, "listening {addr}").unwrap();
            out.flush().unwrap();
            drop(out);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    }
}

#[cfg(unix)]
mod supervisor {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::BURST;

    /// A worker process, killed when dropped (also when the test fails).
    struct Worker(Child);

    impl Worker {
        fn spawn(path: &Path) -> Worker {
            let child = Command::new(std::env::current_exe().unwrap())
                .env("TOLLGATE_TOWER_REGION", path)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            Worker(child)
        }

        /// Waits for the worker's region and address: (whether it created the region, address).
        fn ready(&mut self) -> (bool, SocketAddr) {
            let mut lines = BufReader::new(self.0.stdout.take().unwrap()).lines();
            let mut next = || lines.next().expect("worker output").unwrap();
            let created = next() == "created true";
            let addr = next()
                .strip_prefix("listening ")
                .expect("listening ADDR")
                .parse()
                .unwrap();
            (created, addr)
        }
    }

    impl Drop for Worker {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The test's directory, removed when dropped.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An answer: the status and the headers, names lower-cased.
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
    }

    impl Reply {
        fn header(&self, name: &str) -> &str {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        }
    }

    /// One HTTP/1.1 GET of `/orders` for (app, shop), on its own connection.
    fn get(addr: SocketAddr, app: u32, shop: u32) -> Reply {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET /orders HTTP/1.1\r\nhost: x\r\nx-app-id: {app}\r\nx-shop-id: {shop}\r\n\
             connection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let head = text.split("\r\n\r\n").next().unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply { status, headers }
    }

    pub(crate) fn one_limit_across_two_server_processes() {
        let dir =
            Dir(std::env::temp_dir().join(format!("tollgate-tower-region-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join("orders");
        // Started together: they race to create the region, and exactly one does.
        let mut workers = [Worker::spawn(&path), Worker::spawn(&path)];
        let ready = workers.each_mut().map(Worker::ready);
        assert_eq!(
            ready.iter().filter(|(created, _)| *created).count(),
            1,
            "exactly one worker created the region"
        );
        let addrs: Vec<SocketAddr> = ready.iter().map(|(_, addr)| *addr).collect();

        // Five requests to each worker in turn: both admit (the bucket is far from empty).
        let mut admitted = Vec::new();
        for i in 0..10 {
            let r = get(addrs[i % 2], 1, 1);
            assert_eq!(r.status, 200, "request {i}");
            admitted.push(r);
        }
        // Then 4 clients per worker, 20 requests each, all on the same key at once.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let addr = addrs[i % 2];
                std::thread::spawn(move || (0..20).map(|_| get(addr, 1, 1)).collect::<Vec<_>>())
            })
            .collect();
        let mut refused = Vec::new();
        for t in threads {
            for r in t.join().unwrap() {
                match r.status {
                    200 => admitted.push(r),
                    429 => refused.push(r),
                    s => panic!("status {s}"),
                }
            }
        }
        assert_eq!(
            (admitted.len(), refused.len()),
            (30, 140),
            "one bucket of 30 across both processes"
        );

        // Every admission saw its own count of the one bucket: 1/30 to 30/30, each once.
        let mut used: Vec<u64> = admitted
            .iter()
            .map(|r| {
                let v = r.header("x-sb-shop-api-call-limit");
                v.strip_suffix("/30").unwrap().parse().unwrap()
            })
            .collect();
        used.sort_unstable();
        assert_eq!(used, (1..=BURST).collect::<Vec<_>>());
        for r in &admitted {
            // A bucket of 30 draining one an hour empties in 30 hours: w = 108000 s.
            assert_eq!(r.header("ratelimit-policy"), "\"api\";q=30;w=108000");
            assert_eq!(r.header("retry-after"), "");
        }
        for r in &refused {
            assert_eq!(r.header("x-sb-shop-api-call-limit"), "30/30");
            assert!(
                r.header("ratelimit").starts_with("\"api\";r=0;t="),
                "{}",
                r.header("ratelimit")
            );
            // One unit drains in an hour.
            let retry: u64 = r.header("retry-after").parse().unwrap();
            assert!((3_500..=3_600).contains(&retry), "retry-after {retry}");
        }
        // Another key has its own bucket, in either process.
        let other = get(addrs[1], 1, 2);
        assert_eq!(
            (other.status, other.header("x-sb-shop-api-call-limit")),
            (200, "1/30")
        );
        drop(workers);
        drop(dir);
    }
}
