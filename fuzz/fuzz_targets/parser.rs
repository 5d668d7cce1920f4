//! Fuzz target: the Containerfile parser must never panic or hang, on any
//! UTF-8 input, in either layer; printing what it accepted and parsing that
//! again must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild::containerfile::{dump, parse, parse_ast, print};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_ast(text, "Containerfile") {
        Ok(ast) => {
            let _ = dump(&ast);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match parse(text, "Containerfile") {
        Ok(cf) => {
            let printed = print(&cf);
            let _ = parse(&printed, "Containerfile").map_err(|e| e.to_string());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
