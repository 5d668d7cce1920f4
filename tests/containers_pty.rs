//! `rbuild run -t` driven through a real pseudo-terminal by the test, as
//! root and rootless: an interactive shell reads what is typed, sees the
//! terminal's window size, gets job control, and Ctrl-C interrupts its
//! foreground job without ending the session.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Runner, Sandbox};

struct Pty {
    master: File,
    slave: OwnedFd,
}

fn open_pty(rows: u16, cols: u16) -> Pty {
    let mut master = -1;
    let mut slave = -1;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    unsafe {
        Pty {
            master: File::from_raw_fd(master),
            slave: OwnedFd::from_raw_fd(slave),
        }
    }
}

fn wait_for(out: &Arc<Mutex<Vec<u8>>>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared; terminal so far:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interactive_shell(runner: Runner) {
    let s = Sandbox::new(runner);
    s.import_busybox();
    let c = s.ok(&["from", "busybox"]).trim().to_string();
    let pty = open_pty(33, 101);
    let mut cmd = s.command(common::shared_binary());
    cmd.arg("--root")
        .arg(s.store())
        .arg("--runroot")
        .arg(s.path().join("run"));
    cmd.args(["run", "-t", &c, "--", "sh"]);
    cmd.current_dir(s.path());
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut child = cmd.spawn().unwrap();
    // The Command keeps its copies of the slave: drop it too, so the
    // master reads EIO once the command is gone.
    drop(cmd);
    drop(pty.slave);

    let out = Arc::new(Mutex::new(Vec::new()));
    let mut reader = pty.master.try_clone().unwrap();
    let sink = Arc::clone(&out);
    let copier = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once every slave fd is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut master = pty.master;
    let mut typed = |text: &str| master.write_all(text.as_bytes()).unwrap();

    typed("stty size; echo mark$((1+1))\n");
    wait_for(&out, "mark2");
    typed("sleep 1000\n");
    // Give the shell time to start the job; Ctrl-C must reach it.
    std::thread::sleep(Duration::from_millis(700));
    typed("\x03");
    typed("echo after$((2+3))\n");
    wait_for(&out, "after5");
    typed("echo hi; exit\n");

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "rbuild run -t did not exit; terminal:\n{}",
                String::from_utf8_lossy(&out.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    copier.join().unwrap();
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert!(
        status.success(),
        "{runner:?}: exit {status}; terminal:\n{text}"
    );
    let lines: Vec<&str> = text.split("\r\n").map(str::trim).collect();
    assert!(
        lines.contains(&"hi"),
        "{runner:?}: no line 'hi' in:\n{text}"
    );
    assert!(
        lines.contains(&"33 101"),
        "{runner:?}: the window size did not reach the shell:\n{text}"
    );
    assert!(
        !text.contains("job control turned off"),
        "{runner:?}: no job control:\n{text}"
    );
    s.ok(&["rm", &c]);
}

#[test]
fn run_t_gives_an_interactive_shell_through_a_pty() {
    for runner in Runner::all() {
        interactive_shell(runner);
    }
}
