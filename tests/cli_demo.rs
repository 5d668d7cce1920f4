//! The README demo (`scripts/demo.sh`) runs end to end, as root and as the
//! unprivileged user: import, bud, images, history, push, inspect.

mod common;

use std::fs;
use std::path::Path;

use common::{shared_binary, text, Runner, Sandbox};

#[test]
fn readme_demo_script_runs() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        // A copy in the sandbox: the checkout may sit under a 0700 home the
        // unprivileged user cannot read. The script finds its Containerfile
        // relative to itself.
        for rel in [
            "scripts/demo.sh",
            "Containerfiles/demo/Containerfile",
            "Containerfiles/demo/greet.sh",
        ] {
            sb.write(rel, fs::read(crate_dir.join(rel)).unwrap());
        }
        let script = sb.path().join("scripts/demo.sh");
        let mut cmd = sb.command(Path::new("/bin/bash"));
        cmd.arg(&script).arg(shared_binary());
        let out = cmd.output().unwrap();
        let all = text(&out);
        assert!(out.status.success(), "{runner:?}: demo failed:\n{all}");
        assert!(all.contains("localhost/demo"), "{runner:?}: {all}");
        assert!(
            all.contains("Writing manifest to image destination"),
            "{all}"
        );
        assert!(
            all.contains("[/app/greet.sh] [PATH=") && all.contains("GREETING=hello]"),
            "{runner:?}: {all}"
        );
    }
}
