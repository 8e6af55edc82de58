//! A throwaway Dovecot IMAP server (Debian's `dovecot-imapd`) for the IMAP poller's tests:
//! its own configuration, state and maildir in a temporary folder, one password-file user,
//! plain IMAP on a loopback port, running in the foreground as an unprivileged user (the
//! `dovecot` system user when the tests run as root, else the current user). Dropping it
//! stops the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The IMAP user and password.
pub const USER: &str = "bounces";
pub const PASSWORD: &str = "imap-test-password";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    child: Child,
}

impl Dovecot {
    /// Starts a server, or returns `None` (after printing why) when Dovecot is not installed
    /// and `HERALD_REQUIRE_TOOLS` is not set.
    pub async fn start() -> Option<Dovecot> {
        let binary = super::require_tool(
            "dovecot",
            &["/usr/sbin/dovecot"],
            "apt-get install dovecot-imapd",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("herald-dovecot")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["base", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let as_root = is_root();
        let (user, group) = if as_root {
            ("dovecot".to_string(), "dovecot".to_string())
        } else {
            let user = std::env::var("USER").unwrap_or_else(|_| whoami());
            (user.clone(), group_of(&user))
        };
        let port = free_port();
        std::fs::write(
            root.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .unwrap();
        let r = root.display();
        std::fs::write(
            root.join("dovecot.conf"),
            format!(
                "protocols = imap\n\
                 listen = 127.0.0.1\n\
                 base_dir = {r}/base\n\
                 state_dir = {r}/state\n\
                 instance_name = herald-test-{port}\n\
                 log_path = {r}/dovecot.log\n\
                 ssl = no\n\
                 first_valid_uid = 1\n\
                 first_valid_gid = 1\n\
                 disable_plaintext_auth = no\n\
                 auth_mechanisms = plain login\n\
                 default_internal_user = {user}\n\
                 default_internal_group = {group}\n\
                 default_login_user = {user}\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={user} gid={group} home={r}/mail/%u\n}}\n\
                 mail_location = maildir:~/Maildir\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n  chroot =\n}}\n\
                 service auth {{\n  user = {user}\n}}\n\
                 service auth-worker {{\n  user = {user}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n"
            ),
        )
        .unwrap();
        let mut command = if as_root {
            chown_tree(&root, "dovecot");
            let mut c = Command::new("setpriv");
            c.args(["--reuid=dovecot", "--regid=dovecot", "--clear-groups"])
                .arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        let child = command
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dovecot starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut server = Dovecot { dir, addr, child };
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Some(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("dovecot exited with {status}: {}", server.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("dovecot did not listen in time: {}", server.log());
    }

    /// `imap://bounces@127.0.0.1:PORT/INBOX`.
    pub fn url(&self) -> String {
        format!("imap://{USER}@{}/INBOX", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The maildir folder of a mailbox (`INBOX` or another).
    pub fn maildir(&self, mailbox: &str) -> PathBuf {
        let base = self.dir.path().join("mail").join(USER).join("Maildir");
        if mailbox == "INBOX" {
            base
        } else {
            base.join(format!(".{mailbox}"))
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // Our own child, by its id.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn whoami() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap()
}

fn group_of(user: &str) -> String {
    Command::new("id")
        .args(["-gn", user])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap()
}

fn chown_tree(path: &std::path::Path, user: &str) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:{user}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
