//! Documentation from one source: the docstrings of `python/softcore/_core.pyi` become the
//! runtime `__doc__` of each function (`#[doc = include_str!(...)]` on the `#[pyfunction]`s),
//! so `help(softcore.X)` and the stub show the same text. A function without a docstring in
//! the stub fails to build.

use std::fs;
use std::path::Path;

fn main() {
    let stub = "python/softcore/_core.pyi";
    println!("cargo:rerun-if-changed={stub}");
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dir = Path::new(&out).join("docs");
    fs::create_dir_all(&dir).expect("create OUT_DIR/docs");
    let text = fs::read_to_string(stub).expect("read the stub");
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let name = lines[i]
            .strip_prefix("def ")
            .or_else(|| lines[i].strip_prefix("class "))
            .and_then(|rest| rest.split(['(', ':']).next());
        i += 1;
        let Some(name) = name else { continue };
        // The signature runs to the line ending in ':'; a docstring may follow.
        let mut j = i - 1;
        while j < lines.len() && !lines[j].trim_end().ends_with(':') {
            if lines[j].trim_end().ends_with("...") {
                break;
            }
            j += 1;
        }
        let Some(first) = lines
            .get(j + 1)
            .and_then(|l| l.trim_start().strip_prefix("\"\"\""))
        else {
            continue;
        };
        let mut doc = Vec::new();
        if let Some(one) = first.strip_suffix("\"\"\"") {
            doc.push(one.to_string());
        } else {
            doc.push(first.to_string());
            let mut k = j + 2;
            while k < lines.len() {
                let l = lines[k];
                if let Some(last) = l.trim_end().strip_suffix("\"\"\"") {
                    doc.push(
                        last.strip_prefix("    ")
                            .unwrap_or(last.trim_start())
                            .to_string(),
                    );
                    break;
                }
                doc.push(l.strip_prefix("    ").unwrap_or(l.trim_start()).to_string());
                k += 1;
            }
        }
        while doc.last().is_some_and(|l| l.trim().is_empty()) {
            doc.pop();
        }
        fs::write(dir.join(format!("{name}.txt")), doc.join("\n")).expect("write a doc");
    }
}
