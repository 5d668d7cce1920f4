//! Typed messages between a parent and the child it forked or spawned, one
//! JSON document per line over a pipe (the shape of youki's `channel.rs`).
//!
//! Two conversations use it: the user-namespace handshake (the child has
//! unshared, the parent has written the id maps) and the RUN helper's report
//! (setup failed at a step, or the step's exit status).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{Result, SandboxError};

/// The user-namespace handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsernsMessage {
    /// Child → parent: I am in the new user namespace; map me.
    Unshared,
    /// Parent → child: the maps are written; `full` is false for a single-id map.
    Mapped { full: bool },
    /// Parent → child: the maps could not be written.
    MapFailed(String),
}

/// What the RUN helper reports to the process that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelperMessage {
    /// Sandbox setup failed before the command started.
    SetupFailed { step: String, detail: String },
    /// The step's pid 1 exited with this status.
    Exited(i32),
    /// The step's pid 1 was killed by this signal.
    Signaled(i32),
}

/// The writing end of a typed pipe.
pub struct Sender<T> {
    file: File,
    peer: &'static str,
    _msg: PhantomData<T>,
}

/// The reading end of a typed pipe.
pub struct Receiver<T> {
    reader: BufReader<File>,
    peer: &'static str,
    _msg: PhantomData<T>,
}

/// A close-on-exec pipe carrying `T`; `peer` names the other side in errors.
pub fn channel<T: Serialize + DeserializeOwned>(
    peer: &'static str,
) -> Result<(Sender<T>, Receiver<T>)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(SandboxError::sys("pipe2", None))?;
    Ok((Sender::from_fd(w, peer), Receiver::from_fd(r, peer)))
}

impl<T: Serialize> Sender<T> {
    /// Wraps an fd inherited from a parent.
    pub fn from_fd(fd: OwnedFd, peer: &'static str) -> Self {
        Sender {
            file: File::from(fd),
            peer,
            _msg: PhantomData,
        }
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &T) -> Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(|e| SandboxError::Handshake {
            peer: self.peer,
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| SandboxError::Handshake {
                peer: self.peer,
                detail: format!("write: {e}"),
            })
    }

    /// The raw fd, to keep it open across exec.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Sender<UsernsMessage> {
    /// Child: tell the parent the new namespace exists.
    pub fn unshared(&mut self) -> Result<()> {
        self.send(&UsernsMessage::Unshared)
    }
    /// Parent: tell the child its maps are in place.
    pub fn mapped(&mut self, full: bool) -> Result<()> {
        self.send(&UsernsMessage::Mapped { full })
    }
    /// Parent: tell the child why its maps could not be written.
    pub fn map_failed(&mut self, why: &str) -> Result<()> {
        self.send(&UsernsMessage::MapFailed(why.to_string()))
    }
}

impl Sender<HelperMessage> {
    /// Helper: sandbox setup failed at `step`.
    pub fn setup_failed(&mut self, step: &str, detail: &str) -> Result<()> {
        self.send(&HelperMessage::SetupFailed {
            step: step.to_string(),
            detail: detail.to_string(),
        })
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Wraps an fd inherited from a parent.
    pub fn from_fd(fd: OwnedFd, peer: &'static str) -> Self {
        Receiver {
            reader: BufReader::new(File::from(fd)),
            peer,
            _msg: PhantomData,
        }
    }

    /// The next message, or `None` when the peer closed its end.
    pub fn recv(&mut self) -> Result<Option<T>> {
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return Ok(None),
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(SandboxError::Handshake {
                        peer: self.peer,
                        detail: format!("read: {e}"),
                    })
                }
            }
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| SandboxError::Handshake {
                peer: self.peer,
                detail: format!("bad message {:?}: {e}", line.trim_end()),
            })
    }

    /// The next message; the peer closing its end is an error.
    pub fn expect(&mut self) -> Result<T> {
        self.recv()?.ok_or(SandboxError::Handshake {
            peer: self.peer,
            detail: "closed the pipe without a message".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_in_order_and_eof_is_none() {
        let (mut tx, mut rx) = channel::<UsernsMessage>("test").unwrap();
        tx.unshared().unwrap();
        tx.mapped(true).unwrap();
        tx.map_failed("no\nnewline trouble").unwrap();
        drop(tx);
        assert_eq!(rx.recv().unwrap(), Some(UsernsMessage::Unshared));
        assert_eq!(
            rx.recv().unwrap(),
            Some(UsernsMessage::Mapped { full: true })
        );
        assert_eq!(
            rx.recv().unwrap(),
            Some(UsernsMessage::MapFailed("no\nnewline trouble".into()))
        );
        assert_eq!(rx.recv().unwrap(), None);
        assert!(rx.expect().is_err());
    }

    #[test]
    fn garbage_is_a_handshake_error() {
        let (tx, mut rx) = channel::<HelperMessage>("helper").unwrap();
        let mut f = tx.file;
        f.write_all(b"{not json}\n").unwrap();
        drop(f);
        let err = rx.recv().unwrap_err().to_string();
        assert!(
            err.contains("helper") && err.contains("bad message"),
            "{err}"
        );
    }
}
