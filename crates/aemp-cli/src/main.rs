//! The `aemp` command-line tool.

fn main() {
    println!("aemp {}", env!("CARGO_PKG_VERSION"));
}
