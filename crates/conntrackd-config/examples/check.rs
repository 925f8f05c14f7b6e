//! Prints diagnostics and the summary of a config file.
fn main() {
    for arg in std::env::args().skip(1) {
        match conntrackd_config::load(std::path::Path::new(&arg)) {
            Ok((src, parsed)) => {
                print!("{}", parsed.render_all(&src, &arg));
                for d in &parsed.diagnostics {
                    println!("C: {}", d.c_message());
                }
                match &parsed.config {
                    Some(c) => print!("{}", conntrackd_config::check_summary(c)),
                    None => println!("REJECTED"),
                }
            }
            Err(e) => println!("{arg}: {e}"),
        }
    }
}
