//! Compiles `proto/` with protox (a protobuf compiler in Rust, so no system `protoc` is needed)
//! and generates the Rust types with prost.

use std::path::PathBuf;

const FILES: &[&str] = &[
    "fieldlink/v1/common.proto",
    "fieldlink/v1/uplink.proto",
    "fieldlink/v1/downlink.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(FILES, [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
