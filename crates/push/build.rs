//! Compiles `proto/push.proto` with protox (no system `protoc`) and generates the Rust types with
//! prost, as `crates/proto/build.rs` does for the MQTT wire.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("push.proto").display()
    );
    let descriptors = protox::compile(["push.proto"], [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
