//! Lists `scenarios/*.txt` for `src/lib.rs`, so a new transcript is picked up by
//! dropping it in the directory.

use std::fmt::Write as _;

fn main() {
    let directory = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("scenarios");
    println!("cargo:rerun-if-changed={}", directory.display());
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path.file_name()?.to_str()?.strip_suffix(".txt")?.to_string();
            Some(name)
        })
        .collect();
    names.sort();
    let mut code = String::from("&[\n");
    for name in names {
        let path = directory.join(format!("{name}.txt"));
        writeln!(code, "    ({name:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    code.push_str("]\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("scenarios.rs");
    std::fs::write(out, code).unwrap();
}
