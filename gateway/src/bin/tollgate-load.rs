//! The load program; `--help` lists the flags (see `docs/demo.md`).

use tollgate_gateway::load::{self, LoadConfig, USAGE};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let (config, check) = match LoadConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tollgate-load: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate-load: runtime: {e}");
            std::process::exit(1);
        }
    };
    let lanes = match rt.block_on(load::run(&config)) {
        Ok(lanes) => lanes,
        Err(e) => {
            eprintln!("tollgate-load: {e}");
            std::process::exit(1);
        }
    };
    print!("{}", load::summary(&config, &lanes));
    if check {
        if let Err(e) = load::check(&lanes) {
            eprintln!("tollgate-load: check failed: {e}");
            std::process::exit(1);
        }
    }
}
