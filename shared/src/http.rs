//! What the Graph and token calls share about HTTP: reading an answer's
//! status, request id, `Retry-After` and capped body, naming transport
//! errors without their details, and Graph's error body format.

use crate::retry::parse_retry_after;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// Most bytes read from one Graph response. A full page of devices with
/// the selected fields is well under 2 MB; anything larger is not Graph.
pub const MAX_GRAPH_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes read from a token response; a real one is about 2 KB.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// An answer: status, Graph's `request-id`, the server's `Retry-After`
/// and the body (empty when it could not be read).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

impl Reply {
    /// The status line and headers of `resp`; the body comes from [`read_body`].
    pub fn head(resp: &reqwest::Response) -> Reply {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Reply {
            status: resp.status().as_u16(),
            request_id: header("request-id"),
            retry_after: header("retry-after")
                .and_then(|v| parse_retry_after(&v, SystemTime::now())),
            body: bytes::Bytes::new(),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A response body, read up to `limit` bytes. Graph and Entra ID are trusted,
/// but a proxy or an error page in between must not grow memory without
/// bound. The error says what went wrong in words (never the body).
pub async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, &'static str> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err("the response was too large");
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_kind(&e))? {
        if body.len() + chunk.len() > limit {
            return Err("the response was too large");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A short, value-free description of a transport error.
pub fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else {
        "connection error"
    }
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorDetail,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GraphErrorDetail {
    code: String,
    message: String,
}

/// `code: message` from Graph's error body. Intune nests a JSON document in
/// `message`; its inner `Message` is what a person wants to read. Public for
/// the fuzz tests.
pub fn error_summary(body: &[u8]) -> String {
    let Ok(body) = serde_json::from_slice::<GraphErrorBody>(body) else {
        return "no error details".to_string();
    };
    let mut message = body.error.message;
    if let Ok(serde_json::Value::Object(inner)) =
        serde_json::from_str::<serde_json::Value>(&message)
        && let Some(serde_json::Value::String(m)) = inner.get("Message")
    {
        message = m.clone();
    }
    let message: String = message.chars().take(300).collect();
    format!("{}: {}", body.error.code, message)
}

/// A wait as the whole seconds a caller is told (`Retry-After`,
/// `retryAfterSeconds`): rounded up, so a 2.128 s hint is 3, never 2.
pub fn whole_seconds(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_summary_unwraps_intune_nested_message() {
        assert_eq!(
            error_summary(
                br#"{"error":{"code":"BadRequest","message":"{\"_version\": 3, \"Message\": \"An error has occurred - Operation ID: 1\", \"RetryAfter\": null}","innerError":{"request-id":"x"}}}"#
            ),
            "BadRequest: An error has occurred - Operation ID: 1"
        );
        assert_eq!(
            error_summary(
                br#"{"error":{"code":"Forbidden","message":"Application is not authorized"}}"#
            ),
            "Forbidden: Application is not authorized"
        );
        assert_eq!(error_summary(b"<html>"), "no error details");
    }

    #[test]
    fn hints_round_up_to_whole_seconds() {
        assert_eq!(
            whole_seconds(Duration::from_millis(2128)),
            Duration::from_secs(3)
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(whole_seconds(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            whole_seconds(Duration::from_secs(u64::MAX)),
            Duration::from_secs(u64::MAX)
        );
    }

    /// Serves one HTTP answer with a body of `size` bytes, announced or not.
    fn serve_once(size: usize, announce_length: bool) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let head = if announce_length {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nretry-after: 2.128\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string()
            };
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![b'x'; size]);
        });
        url
    }

    #[test]
    fn bodies_are_read_up_to_a_limit_only() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::new();
            for announce in [true, false] {
                let small = client.get(serve_once(1000, announce)).send().await.unwrap();
                let head = Reply::head(&small);
                assert_eq!(head.status, 200);
                assert_eq!(
                    head.retry_after,
                    announce.then_some(Duration::from_millis(2128))
                );
                assert_eq!(read_body(small, 4096).await.unwrap().len(), 1000);
                let large = client
                    .get(serve_once(100_000, announce))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    read_body(large, 4096).await.unwrap_err(),
                    "the response was too large",
                    "content-length announced: {announce}"
                );
            }
        });
    }
}
