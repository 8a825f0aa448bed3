//! The gateway program; `--help` lists the flags (see `docs/gateway.md`).

use tollgate_gateway::config::{Cli, USAGE};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let (cli, settings) = match Cli::parse(args).and_then(|c| {
        let s = c.settings()?;
        Ok((c, s))
    }) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tollgate-gateway: {e}");
            std::process::exit(2);
        }
    };
    if cli.check {
        println!("{settings:#?}");
        println!("config ok");
        return;
    }
    if let Err(e) = tollgate_gateway::server::run(&cli, settings) {
        eprintln!("tollgate-gateway: {e}");
        std::process::exit(1);
    }
}
