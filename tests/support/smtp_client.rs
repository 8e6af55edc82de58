//! A small SMTP client for talking to herald's inbound listener in tests: one command at a
//! time, every reply read whole, so a test can assert on each code.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One SMTP session.
pub struct SmtpClient {
    stream: BufReader<TcpStream>,
}

impl SmtpClient {
    /// Connects and reads the greeting (which must be 220).
    pub async fn connect(addr: SocketAddr) -> SmtpClient {
        let mut client = SmtpClient {
            stream: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        };
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        client
    }

    /// The next reply, every line of it.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await.unwrap() == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends one command line and returns its reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// Sends a message's data after a 354 (dot-stuffed here) and returns the final reply.
    pub async fn data(&mut self, message: &str) -> String {
        let reply = self.command("DATA").await;
        assert!(reply.starts_with("354"), "{reply}");
        let mut text = String::new();
        for line in message.replace("\r\n", "\n").split('\n') {
            if line.starts_with('.') {
                text.push('.');
            }
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str(".\r\n");
        self.stream
            .get_mut()
            .write_all(text.as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// A whole transaction from the null sender (as returned mail comes): returns the reply to
    /// `RCPT TO`, and, when that was accepted, the reply to the data.
    pub async fn deliver(addr: SocketAddr, rcpt: &str, message: &str) -> (String, Option<String>) {
        let mut c = SmtpClient::connect(addr).await;
        let ehlo = c.command("EHLO mx.example.net").await;
        assert!(ehlo.starts_with("250"), "{ehlo}");
        let mail = c.command("MAIL FROM:<>").await;
        assert!(mail.starts_with("250"), "{mail}");
        let rcpt_reply = c.command(&format!("RCPT TO:<{rcpt}>")).await;
        if !rcpt_reply.starts_with("250") {
            c.command("QUIT").await;
            return (rcpt_reply, None);
        }
        let data = c.data(message).await;
        c.command("QUIT").await;
        (rcpt_reply, Some(data))
    }
}
