//! The gateway program; `--help` lists the flags (see `docs/demo.md`).

use tollgate_gateway::config::{Config, USAGE};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tollgate-gateway: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = tollgate_gateway::server::run(&config) {
        eprintln!("tollgate-gateway: {e}");
        std::process::exit(1);
    }
}
