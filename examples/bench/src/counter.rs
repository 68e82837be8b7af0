//! The one statement counter every subcommand uses: statements the database is asked to run,
//! counted where they reach it, whoever sends them (the library, hand-written sqlx, SeaORM).
//!
//! - PostgreSQL and MySQL: a local TCP proxy in front of the server counts, in what the client
//!   sends, the messages that run a statement: PostgreSQL's Query (simple protocol) and Execute
//!   (extended protocol) messages, MySQL's COM_QUERY and COM_STMT_EXECUTE commands. A statement
//!   prepared once and run many times counts once per run; preparing it does not count.
//! - SQLite: a `sqlite3_trace_v2` hook counts each statement SQLite starts running.
//!
//! So `BEGIN`, `COMMIT`, `SAVEPOINT` and `SET TRANSACTION` count like any other statement on every
//! backend, which sqlx's own per-query `tracing` events do not manage: sqlx 0.9 sends SQLite's
//! transaction statements, and PostgreSQL's `BEGIN`, without an event. A multi-statement string
//! sent in one Query message (PostgreSQL) or COM_QUERY (MySQL) counts once; SQLite counts each
//! statement in it. The benchmarks send none.
//!
//! Only connections opened through [`counted_postgres`], [`counted_mysql`] and [`count_sqlite`]
//! are counted; the timed connections talk to the database directly.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// Statements counted so far, on every counted connection.
pub fn statements() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

#[derive(Clone, Copy)]
enum Wire {
    Postgres,
    MySql,
}

/// Where one direction of a connection stands: the message header read so far, and how much of
/// the current message's body is still to pass.
struct Parser {
    wire: Wire,
    /// PostgreSQL: the startup message (no type byte) has gone by.
    started: bool,
    head: Vec<u8>,
    body_left: usize,
}

impl Parser {
    fn new(wire: Wire) -> Self {
        Parser {
            wire,
            started: false,
            head: Vec::with_capacity(8),
            body_left: 0,
        }
    }

    /// Bytes of header needed before the message can be classified.
    fn header_len(&self) -> usize {
        match self.wire {
            // Length (4) and protocol code (4), for the startup message and the SSL/GSS requests
            // that may precede it.
            Wire::Postgres if !self.started => 8,
            // Type (1) and length (4).
            Wire::Postgres => 5,
            // Payload length (3) and sequence id (1); a command (sequence 0) also its first byte.
            Wire::MySql => {
                let command = self.head.len() >= 4 && self.head[3] == 0 && self.mysql_len() > 0;
                if command { 5 } else { 4 }
            }
        }
    }

    fn mysql_len(&self) -> usize {
        usize::from(self.head[0]) | usize::from(self.head[1]) << 8 | usize::from(self.head[2]) << 16
    }

    fn be32(bytes: &[u8]) -> usize {
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
    }

    /// Takes in the next bytes the client sent; returns how many statements they started.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut statements = 0;
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (self.header_len() - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.head.len() < self.header_len() {
                continue;
            }
            let head = &self.head;
            match self.wire {
                Wire::Postgres if !self.started => {
                    // 80877103: SSLRequest, 80877104: GSSENCRequest; anything else starts up.
                    let code = Self::be32(&head[4..8]);
                    self.started = !matches!(code, 80877103 | 80877104);
                    self.body_left = Self::be32(&head[..4]).saturating_sub(8);
                }
                Wire::Postgres => {
                    if matches!(head[0], b'Q' | b'E') {
                        statements += 1;
                    }
                    self.body_left = Self::be32(&head[1..5]).saturating_sub(4);
                }
                Wire::MySql => {
                    // 0x03: COM_QUERY, 0x17: COM_STMT_EXECUTE.
                    if head.len() == 5 && matches!(head[4], 0x03 | 0x17) {
                        statements += 1;
                    }
                    self.body_left = self.mysql_len() - (head.len() - 4);
                }
            }
            self.head.clear();
        }
        statements
    }
}

/// Listens on a local port and forwards each connection to `host:port`, counting the statements
/// the client sends. Returns the local port. The proxy lives as long as the runtime.
async fn proxy(wire: Wire, host: String, port: u16) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let host = host.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect((host.as_str(), port)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = async {
                    let mut parser = Parser::new(wire);
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        STATEMENTS.fetch_add(parser.feed(&buf[..n]), Ordering::Relaxed);
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let downstream = async {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(upstream, downstream);
            });
        }
    });
    Ok(local)
}

/// The same connection options, through a counting proxy (without TLS, which it could not read).
pub async fn counted_postgres(
    options: &sqlx::postgres::PgConnectOptions,
) -> std::io::Result<sqlx::postgres::PgConnectOptions> {
    let port = proxy(
        Wire::Postgres,
        options.get_host().to_owned(),
        options.get_port(),
    )
    .await?;
    Ok(options
        .clone()
        .host("127.0.0.1")
        .port(port)
        .ssl_mode(sqlx::postgres::PgSslMode::Disable))
}

/// The same connection options, through a counting proxy (without TLS, which it could not read).
pub async fn counted_mysql(
    options: &sqlx::mysql::MySqlConnectOptions,
) -> std::io::Result<sqlx::mysql::MySqlConnectOptions> {
    let port = proxy(
        Wire::MySql,
        options.get_host().to_owned(),
        options.get_port(),
    )
    .await?;
    Ok(options
        .clone()
        .host("127.0.0.1")
        .port(port)
        .ssl_mode(sqlx::mysql::MySqlSslMode::Disabled))
}

const SQLITE_TRACE_STMT: c_uint = 0x01;

unsafe extern "C" {
    // From the SQLite library sqlx links (libsqlite3-sys, bundled): a stable C API since 3.14.
    fn sqlite3_trace_v2(
        db: *mut c_void,
        mask: c_uint,
        callback: Option<
            unsafe extern "C" fn(c_uint, *mut c_void, *mut c_void, *mut c_void) -> c_int,
        >,
        context: *mut c_void,
    ) -> c_int;
}

unsafe extern "C" fn on_statement(
    _kind: c_uint,
    _context: *mut c_void,
    _statement: *mut c_void,
    text: *mut c_void,
) -> c_int {
    // A trigger's body is reported with its text starting with "--": part of a statement already
    // counted.
    // SAFETY: for SQLITE_TRACE_STMT, `text` is the statement's zero-terminated UTF-8 text.
    let comment = unsafe {
        let text = text as *const c_char;
        !text.is_null() && *text == b'-' as c_char && *text.add(1) == b'-' as c_char
    };
    if !comment {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
    0
}

/// Counts every statement this connection runs from now on.
pub async fn count_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked, so sqlx is making no call on it meanwhile; the callback keeps
    // no pointer and outlives the connection (a plain function).
    let rc = unsafe {
        sqlite3_trace_v2(
            handle.as_raw_handle().as_ptr().cast(),
            SQLITE_TRACE_STMT,
            Some(on_statement),
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        return Err(sqlx::Error::Protocol(format!(
            "sqlite3_trace_v2 failed with code {rc}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn postgres_messages_split_anywhere() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&80877103u32.to_be_bytes()); // SSLRequest
        stream.extend_from_slice(&12u32.to_be_bytes());
        stream.extend_from_slice(&196608u32.to_be_bytes()); // StartupMessage
        stream.extend_from_slice(b"QQQQ"); // its body: parameters, not messages
        stream.extend(pg(b'Q', b"BEGIN\0"));
        stream.extend(pg(b'P', b"\0SELECT 1\0\0\0"));
        stream.extend(pg(b'B', b"EEEEEEEE"));
        stream.extend(pg(b'E', b"\0\0\0\0\0"));
        stream.extend(pg(b'S', b""));
        stream.extend(pg(b'Q', b"COMMIT\0"));
        for step in 1..stream.len() {
            let mut parser = Parser::new(Wire::Postgres);
            let counted: u64 = stream.chunks(step).map(|c| parser.feed(c)).sum();
            assert_eq!(counted, 3, "chunks of {step}");
        }
    }

    #[test]
    fn mysql_commands_split_anywhere() {
        let packet = |seq: u8, payload: &[u8]| {
            let len = payload.len() as u32;
            let mut p = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
            p.extend_from_slice(payload);
            p
        };
        let mut stream = Vec::new();
        stream.extend(packet(1, b"\x03\x03\x17 handshake response"));
        stream.extend(packet(0, b"\x03BEGIN"));
        stream.extend(packet(0, b"\x16SELECT ?"));
        stream.extend(packet(0, b"\x17\x01\x00\x00\x00"));
        stream.extend(packet(0, b"\x0e"));
        stream.extend(packet(0, b"\x03COMMIT"));
        for step in 1..stream.len() {
            let mut parser = Parser::new(Wire::MySql);
            let counted: u64 = stream.chunks(step).map(|c| parser.feed(c)).sum();
            assert_eq!(counted, 3, "chunks of {step}");
        }
    }
}
