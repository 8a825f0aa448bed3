//! The demo's stand-in upstream: `tollgate-upstream [--port N] [--latency-ms N] [--threads N]`.
//! Prints `listening on 127.0.0.1:PORT`, then answers every request with JSON after the latency.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

const USAGE: &str = "tollgate-upstream [--port N (0 = any, default 9000)] [--latency-ms N (default 20)] [--threads N (default 1)]\n";

fn value(args: &[String], name: &str, default: u64, max: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let v = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            let n: u64 = v
                .parse()
                .map_err(|_| format!("{name}: not a number: {v:?}"))?;
            if n > max {
                return Err(format!("{name}: at most {max}"));
            }
            Ok(n)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let parsed = (|| {
        for (i, a) in args.iter().enumerate() {
            if a.starts_with("--") && !matches!(a.as_str(), "--port" | "--latency-ms" | "--threads")
            {
                return Err(format!("unknown flag {a}"));
            }
            if !a.starts_with("--") && (i == 0 || !args[i - 1].starts_with("--")) {
                return Err(format!("unexpected argument {a:?}"));
            }
        }
        Ok((
            value(&args, "--port", 9000, 65_535)?,
            value(&args, "--latency-ms", 20, 3_600_000)?,
            value(&args, "--threads", 1, 64)?,
        ))
    })();
    let (port, latency, threads) = match parsed {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tollgate-upstream: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        let port = u16::try_from(port)?;
        let listener = tollgate_gateway::upstream::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::try_from(threads.max(1))?)
            .enable_all()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            println!("listening on {addr}");
            std::io::stdout().flush()?;
            tokio::select! {
                () = tollgate_gateway::upstream::serve(listener, Duration::from_millis(latency)) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok::<_, std::io::Error>(())
        })?;
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("tollgate-upstream: {e}");
        std::process::exit(1);
    }
}
