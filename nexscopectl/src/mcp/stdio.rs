//! The MCP shim's stdio: one owner for each direction, between the client
//! and rmcp, which serves on two in-process pipes.
//!
//! rmcp drops a line that is not JSON without a word; JSON-RPC wants a parse
//! error (-32700) with id null, and the client a chance to see its mistake.
//! So lines are checked here before rmcp sees them. stdout has one writer,
//! so a parse error never lands inside one of rmcp's replies.

use serde_json::json;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The longest line taken from the client: rmcp's own bound, far above any
/// tool call (a text is at most 4 KiB).
const MAX_LINE: usize = 16 * 1024 * 1024;
/// What each in-process pipe between the stdio owners and rmcp holds.
const PIPE_BYTES: usize = 64 * 1024;
/// Parse errors waiting to be written; past that a client that sends only
/// garbage and does not read gets no more answers, not more of our memory.
const QUEUED_PARSE_ERRORS: usize = 64;

/// The two tasks that own stdin and stdout.
pub struct Stdio {
    input: JoinHandle<std::io::Result<()>>,
    output: JoinHandle<std::io::Result<()>>,
}

/// Takes over stdin and stdout; the pipe ends rmcp serves on.
pub fn open() -> (Stdio, (DuplexStream, DuplexStream)) {
    let (stdin, stdout) = rmcp::transport::stdio();
    let (to_server, server_in) = tokio::io::duplex(PIPE_BYTES);
    let (server_out, from_server) = tokio::io::duplex(PIPE_BYTES);
    let (errors, answers) = mpsc::channel(QUEUED_PARSE_ERRORS);
    let input = tokio::spawn(forward_input(
        tokio::io::BufReader::new(stdin),
        to_server,
        errors,
    ));
    let output = tokio::spawn(forward_output(
        tokio::io::BufReader::new(from_server),
        answers,
        stdout,
    ));
    (Stdio { input, output }, (server_in, server_out))
}

impl Stdio {
    /// Once rmcp is done: stop reading for it, and let its last replies out
    /// (its end of the pipe is closed, so the writer ends after them).
    pub async fn close(self) {
        self.input.abort();
        // The client may be gone already; there is nobody left to tell.
        let _ = self.output.await;
    }
}

/// The JSON-RPC answer to a line that is not JSON: no id can be read from
/// it, so the id is null (JSON-RPC 2.0, "Error object").
fn parse_error(detail: &str) -> Vec<u8> {
    let mut line = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32700, "message": format!("Parse error: {detail}") },
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

/// One line from the client, at most MAX_LINE bytes.
enum Line {
    Complete,
    TooLong,
    End,
}

async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    line.clear();
    let read = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', line)
        .await?;
    if read == 0 {
        return Ok(Line::End);
    }
    if line.len() <= MAX_LINE || line.ends_with(b"\n") {
        return Ok(Line::Complete);
    }
    // Skip the rest of the line, a bounded piece at a time.
    let mut rest = Vec::new();
    loop {
        rest.clear();
        let read = (&mut *reader)
            .take(PIPE_BYTES as u64)
            .read_until(b'\n', &mut rest)
            .await?;
        if read == 0 || rest.ends_with(b"\n") {
            return Ok(Line::TooLong);
        }
    }
}

/// The client's lines to rmcp; a line that is not JSON is answered with a
/// parse error instead (rmcp would drop it without a word). At the end of
/// input, rmcp's input ends too.
async fn forward_input<R, W>(
    mut client: R,
    mut server: W,
    errors: mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut line = Vec::new();
    loop {
        let answer = match read_line(&mut client, &mut line).await? {
            Line::End => break,
            Line::TooLong => parse_error(&format!("a message longer than {MAX_LINE} bytes")),
            Line::Complete if line.trim_ascii().is_empty() => continue,
            Line::Complete => match serde_json::from_slice::<serde::de::IgnoredAny>(&line) {
                Ok(_) => {
                    server.write_all(&line).await?;
                    server.flush().await?;
                    continue;
                }
                Err(e) => parse_error(&format!("the message is not JSON ({e})")),
            },
        };
        // A full queue means the client is not reading: drop the answer.
        let _ = errors.try_send(answer);
    }
    server.shutdown().await
}

/// The one writer of stdout: rmcp's replies, whole lines at a time, and
/// the parse errors between them.
async fn forward_output<R, W>(
    mut server: R,
    mut errors: mpsc::Receiver<Vec<u8>>,
    mut client: W,
) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // A read cut short by a parse error keeps its bytes here and goes on.
    let mut line = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(answer) = errors.recv() => client.write_all(&answer).await?,
            read = server.read_until(b'\n', &mut line) => {
                let end = read? == 0;
                client.write_all(&line).await?;
                line.clear();
                if end {
                    break;
                }
            }
        }
        client.flush().await?;
    }
    client.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn json_lines_reach_rmcp_and_other_lines_get_a_parse_error() {
        let client: &[u8] =
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\nnot json\n  \n{\"cut\": \n";
        let mut server = Vec::new();
        let (errors, mut answers) = mpsc::channel(QUEUED_PARSE_ERRORS);
        forward_input(client, &mut server, errors).await.unwrap();
        assert_eq!(
            server,
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"
        );
        for _ in 0..2 {
            let answer: serde_json::Value =
                serde_json::from_slice(&answers.recv().await.unwrap()).unwrap();
            assert_eq!(answer["id"], serde_json::Value::Null);
            assert_eq!(answer["error"]["code"], -32700);
        }
        assert!(answers.recv().await.is_none(), "the blank line is skipped");
    }
}
