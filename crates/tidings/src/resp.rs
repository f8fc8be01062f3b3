//! The few pieces of the Redis protocol (RESP2) a subscriber needs: encoding
//! a command, and reading one reply at a time.
//!
//! The Redis source reads its socket itself instead of through redis-rs's
//! `PubSub`, because that one moves every message into an unbounded queue as
//! soon as it arrives: the consumer's bounded queue could then never slow
//! the reading down, and a slow consumer would grow memory without limit.
//! Reading one reply only when there is room for it leaves the buffering to
//! Redis, which bounds it (see the module docs of `source`).

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest message payload passed on; larger ones are skipped with a
/// warning rather than buffered.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Longest status/error/length line accepted.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Deepest nesting of arrays accepted (pub/sub replies use one level).
const MAX_DEPTH: u8 = 4;

/// Most elements accepted in one array.
const MAX_ARRAY_LEN: i64 = 1024;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Bytes>),
    /// A bulk string longer than [`MAX_PAYLOAD_BYTES`], read and discarded.
    Skipped(usize),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a bulk or status reply.
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Reply::Status(text) => Some(text),
            Reply::Bulk(Some(bytes)) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RespError {
    #[error("connection closed by Redis")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// `args` as a RESP command (an array of bulk strings).
pub(crate) fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads exactly one reply. Not cancel-safe: abandoning it midway loses the
/// position in the stream, so callers drop the whole connection instead.
pub(crate) async fn read_reply<R: AsyncBufRead + Unpin + Send>(
    reader: &mut R,
) -> Result<Reply, RespError> {
    read_at_depth(reader, 0).await
}

fn read_at_depth<'a, R: AsyncBufRead + Unpin + Send>(
    reader: &'a mut R,
    depth: u8,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RespError>> + Send + 'a>> {
    Box::pin(async move {
        let line = read_line(reader).await?;
        // The type is one ASCII byte; a line that starts with anything else
        // (even a multi-byte character) is a protocol error, never a panic.
        let Some(kind) = line.chars().next() else {
            return Err(RespError::Protocol("empty reply line".into()));
        };
        let rest = &line[kind.len_utf8()..];
        match kind {
            '+' => Ok(Reply::Status(rest.to_owned())),
            '-' => Ok(Reply::Error(rest.to_owned())),
            ':' => Ok(Reply::Integer(parse_length(rest)?)),
            '$' => {
                let length = parse_length(rest)?;
                if length < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let length = usize::try_from(length)
                    .map_err(|_| RespError::Protocol(format!("bad bulk length {rest}")))?;
                if length > MAX_PAYLOAD_BYTES {
                    let skip = u64::try_from(length + 2).unwrap_or(u64::MAX);
                    let copied =
                        tokio::io::copy(&mut reader.take(skip), &mut tokio::io::sink()).await?;
                    if copied < skip {
                        return Err(RespError::Closed);
                    }
                    return Ok(Reply::Skipped(length));
                }
                let mut body = vec![0; length + 2];
                reader.read_exact(&mut body).await.map_err(eof_is_closed)?;
                if !body.ends_with(b"\r\n") {
                    return Err(RespError::Protocol("bulk string not followed by CRLF".into()));
                }
                body.truncate(length);
                Ok(Reply::Bulk(Some(Bytes::from(body))))
            }
            '*' => {
                let length = parse_length(rest)?;
                if length < 0 {
                    return Ok(Reply::Array(None));
                }
                if length > MAX_ARRAY_LEN || depth >= MAX_DEPTH {
                    return Err(RespError::Protocol(format!(
                        "array of {length} at depth {depth} is larger than a subscriber expects"
                    )));
                }
                let mut items = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
                for _ in 0..length {
                    items.push(read_at_depth(reader, depth + 1).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            other => Err(RespError::Protocol(format!("unexpected reply type {other:?}"))),
        }
    })
}

/// One CRLF-terminated line, without the CRLF; never empty.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<String, RespError> {
    let mut line = Vec::new();
    let read = (&mut *reader)
        .take(u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX))
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Err(RespError::Closed);
    }
    if !line.ends_with(b"\r\n") {
        return Err(if line.len() >= MAX_LINE_BYTES {
            RespError::Protocol("reply line too long".into())
        } else {
            RespError::Closed
        });
    }
    line.truncate(line.len() - 2);
    if line.is_empty() {
        return Err(RespError::Protocol("empty reply line".into()));
    }
    String::from_utf8(line).map_err(|_| RespError::Protocol("reply line is not UTF-8".into()))
}

fn parse_length(text: &str) -> Result<i64, RespError> {
    text.parse().map_err(|_| RespError::Protocol(format!("expected a number, got {text:?}")))
}

fn eof_is_closed(error: std::io::Error) -> RespError {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        RespError::Closed
    } else {
        RespError::Io(error)
    }
}

/// For the fuzz target (`tidings::fuzzing`, feature `fuzzing`): reads
/// replies from `bytes` until the first error, at most `limit` of them, and
/// answers how many were read and the error's text, if any. The reader
/// never waits (the bytes are all there), so a no-op waker suffices; a
/// `Pending` would be a bug in the reader and panics, as a crash should.
#[cfg(feature = "fuzzing")]
pub fn fuzz_read_replies(bytes: &[u8], limit: usize) -> (usize, Option<String>) {
    let mut reader = tokio::io::BufReader::new(bytes);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut read = 0;
    while read < limit {
        let mut next = std::pin::pin!(read_reply(&mut reader));
        let std::task::Poll::Ready(result) = next.as_mut().poll(&mut context) else {
            panic!("the RESP reader waited on an in-memory buffer");
        };
        match result {
            Ok(reply) => {
                if let Reply::Array(Some(items)) = &reply {
                    assert!(items.len() as i64 <= MAX_ARRAY_LEN, "array bound ignored");
                }
                read += 1;
            }
            Err(error) => return (read, Some(error.to_string())),
        }
    }
    (read, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, RespError> {
        let mut reader = tokio::io::BufReader::new(bytes);
        read_reply(&mut reader).await
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Some(Bytes::copy_from_slice(text.as_bytes())))
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(command(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            command(&[b"SUBSCRIBE", "ws:库存".as_bytes()]),
            "*2\r\n$9\r\nSUBSCRIBE\r\n$9\r\nws:库存\r\n".as_bytes()
        );
    }

    #[tokio::test]
    async fn a_pubsub_message_parses_into_its_three_parts() {
        let reply =
            parse(b"*3\r\n$7\r\nmessage\r\n$12\r\nws:inventory\r\n$7\r\n{\"a\":1}\r\n").await;
        assert_eq!(
            reply.unwrap(),
            Reply::Array(Some(vec![bulk("message"), bulk("ws:inventory"), bulk("{\"a\":1}")]))
        );
    }

    #[tokio::test]
    async fn payloads_may_contain_crlf_and_any_bytes() {
        let reply = parse(b"$5\r\na\r\n\xff\x00\r\n").await.unwrap();
        assert_eq!(reply, Reply::Bulk(Some(Bytes::from_static(b"a\r\n\xff\x00"))));
    }

    #[tokio::test]
    async fn status_error_and_integer_replies_parse() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            parse(b"-WRONGPASS invalid\r\n").await.unwrap(),
            Reply::Error("WRONGPASS invalid".into())
        );
        assert_eq!(parse(b":42\r\n").await.unwrap(), Reply::Integer(42));
    }

    #[tokio::test]
    async fn a_truncated_stream_is_a_closed_connection() {
        assert!(matches!(parse(b"").await, Err(RespError::Closed)));
        assert!(matches!(parse(b"$10\r\nabc").await, Err(RespError::Closed)));
        assert!(matches!(parse(b"+OK").await, Err(RespError::Closed)));
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        assert!(matches!(parse(b"?what\r\n").await, Err(RespError::Protocol(_))));
        assert!(matches!(parse(b"$abc\r\n").await, Err(RespError::Protocol(_))));
        assert!(matches!(parse(b"*99999\r\n").await, Err(RespError::Protocol(_))));
    }

    #[tokio::test]
    async fn a_multi_byte_first_character_is_a_protocol_error_not_a_panic() {
        assert!(matches!(parse("é+OK\r\n".as_bytes()).await, Err(RespError::Protocol(_))));
        assert!(matches!(parse("库\r\n".as_bytes()).await, Err(RespError::Protocol(_))));
    }

    #[tokio::test]
    async fn oversized_payloads_are_skipped_and_the_stream_continues() {
        let mut stream = format!("${}\r\n", MAX_PAYLOAD_BYTES + 1).into_bytes();
        stream.extend(std::iter::repeat_n(b'x', MAX_PAYLOAD_BYTES + 1));
        stream.extend_from_slice(b"\r\n+NEXT\r\n");
        let mut reader = tokio::io::BufReader::new(stream.as_slice());
        assert_eq!(read_reply(&mut reader).await.unwrap(), Reply::Skipped(MAX_PAYLOAD_BYTES + 1));
        assert_eq!(read_reply(&mut reader).await.unwrap(), Reply::Status("NEXT".into()));
    }
}
