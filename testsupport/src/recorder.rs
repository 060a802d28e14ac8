//! A loopback HTTP server that records every request it receives (method, path, headers, body)
//! and answers with whatever the test says: it stands in for "another host" in the tests that
//! prove a token never reaches a server it was not issued for.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the recorder received it. Header names are lower case.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What the recorder answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(value: serde_json::Value) -> Reply {
        Reply::new(200)
            .header("content-type", "application/json")
            .body(value.to_string().into_bytes())
    }

    /// A redirect with `status` to `location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::new(status).header("location", location)
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The server: `url` is `http://127.0.0.1:<port>`; it runs until the test process ends.
pub struct Recorder {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    /// Starts a recorder answering every request with `handler`'s reply.
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the recorder");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &log, &*handler));
            }
        });
        Recorder { url, seen }
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests that carried `secret` anywhere (a header, base64 inside Basic, the body), or any
    /// credential header at all (`authorization`, `private-token`, `cookie`).
    pub fn credentials_seen(&self, secret: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| {
                let body = String::from_utf8_lossy(&s.body);
                s.headers.iter().any(|(n, v)| {
                    matches!(n.as_str(), "authorization" | "private-token" | "cookie") || v.contains(secret)
                }) || body.contains(secret)
            })
            .collect()
    }
}

/// Reads requests from one connection until it closes; each gets the handler's reply.
fn serve(conn: TcpStream, log: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().expect("cloning the connection"));
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut seen = Seen {
            method,
            path,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = seen.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            seen.body = body;
        } else if seen.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            seen.body = read_chunked(&mut reader);
        }
        let reply = handler(&seen);
        log.lock().unwrap().push(seen);
        let mut head = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (n, v) in &reply.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(&reply.body))
            .is_err()
        {
            return;
        }
    }
}

fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).unwrap_or(0) == 0 {
            return body;
        }
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        let mut chunk = vec![0; n + 2];
        if n == 0 {
            let _ = reader.read_line(&mut String::new());
            return body;
        }
        if reader.read_exact(&mut chunk).is_err() {
            return body;
        }
        body.extend_from_slice(&chunk[..n]);
    }
}
