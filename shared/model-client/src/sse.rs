//! A server-sent events parser (the WHATWG `text/event-stream` rules), fed with network chunks.
//!
//! Lines end with LF, CRLF or a lone CR, also when the CR and LF arrive in different chunks.
//! Lines starting with `:` are comments (keep-alives). Several `data:` lines make one event,
//! joined with `\n`; a blank line ends the event; a pending event is still delivered at the end of
//! the stream. `event:` is kept, `id:` and `retry:` are ignored (we never reconnect).
//!
//! Memory is bounded: a line, or an event's data, longer than the limit is refused (an honest
//! server's chunk is a few hundred bytes; a server that never sends a newline must not make us
//! buffer without end).

/// The default limit of one line and of one event's data.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any (OpenAI sends none; some servers send `event: error`).
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("a server-sent events line is longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("a server-sent event's data is longer than {limit} bytes")]
    EventTooLarge { limit: usize },
}

#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// The last chunk ended with CR: an LF at the start of the next one belongs to it.
    skip_lf: bool,
    /// Bytes of a leading UTF-8 byte-order mark still to check (the spec drops it).
    bom_left: usize,
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(MAX_LINE_BYTES)
    }
}

impl SseParser {
    /// A parser refusing lines and event data over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { line: Vec::new(), data: String::new(), has_data: false, event: None, skip_lf: false, bom_left: 3, limit }
    }

    /// Parses `bytes`, appending each completed event to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        while self.bom_left > 0 && !bytes.is_empty() {
            let at = BOM.len() - self.bom_left;
            if bytes[0] != BOM[at] {
                // Not a BOM after all: give back the bytes taken for one.
                self.line.extend_from_slice(&BOM[..at]);
                self.bom_left = 0;
                break;
            }
            bytes = &bytes[1..];
            self.bom_left -= 1;
        }
        if self.skip_lf && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.skip_lf = false;
        while !bytes.is_empty() {
            let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                self.push_line_bytes(bytes)?;
                break;
            };
            self.push_line_bytes(&bytes[..end])?;
            self.end_line(out)?;
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        Ok(())
    }

    /// The end of the stream: a last unterminated line and a pending event are delivered.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            self.end_line(out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(SseError::LineTooLong { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        let result = self.process_line(&line, out);
        // Keep the allocation for the next line.
        self.line = line;
        self.line.clear();
        result
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                let extra = value.len() + usize::from(self.has_data);
                if self.data.len() + extra > self.limit {
                    return Err(SseError::EventTooLarge { limit: self.limit });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
        }
        self.has_data = false;
        self.event = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn lf_crlf_and_lone_cr() {
        let lf = parse_chunks(&[b"data: a\n\ndata: b\n\n"]);
        let crlf = parse_chunks(&[b"data: a\r\n\r\ndata: b\r\n\r\n"]);
        let cr = parse_chunks(&[b"data: a\r\rdata: b\r\r"]);
        assert_eq!(data(&lf), ["a", "b"]);
        assert_eq!(lf, crlf);
        assert_eq!(lf, cr);
    }

    #[test]
    fn crlf_split_across_chunks_and_byte_by_byte() {
        let whole: &[u8] = b"data: {\"x\": 1}\r\n\r\n: keep-alive\r\n\r\ndata: [DONE]\r\n\r\n";
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(data(&parse_chunks(&bytes)), ["{\"x\": 1}", "[DONE]"]);
        assert_eq!(data(&parse_chunks(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"])), ["a", "b"]);
    }

    #[test]
    fn comments_and_keep_alives_are_skipped() {
        let events = parse_chunks(&[b": OPENROUTER PROCESSING\n\n:\n\ndata: x\n: in the middle\n\n"]);
        assert_eq!(data(&events), ["x"]);
    }

    #[test]
    fn multi_line_data_and_event_names() {
        let events =
            parse_chunks(&[b"event: error\ndata: line one\ndata:line two\ndata\n\nid: 3\nretry: 10\ndata: z\n\n"]);
        assert_eq!(
            events,
            [
                SseEvent { event: Some("error".into()), data: "line one\nline two\n".into() },
                SseEvent { event: None, data: "z".into() }
            ]
        );
    }

    #[test]
    fn pending_event_delivered_at_end_of_stream() {
        assert_eq!(data(&parse_chunks(&[b"data: tail"])), ["tail"]);
        assert!(parse_chunks(&[b"event: only\n"]).is_empty());
    }

    #[test]
    fn leading_bom_dropped() {
        assert_eq!(data(&parse_chunks(&[b"\xEF\xBB", b"\xBFdata: a\n\n"])), ["a"]);
        assert_eq!(data(&parse_chunks(&[b"data: \xEF\xBB\xBFa\n\n"])), ["\u{feff}a"]);
    }

    #[test]
    fn multibyte_characters_split_across_chunks() {
        let text = "data: é漢🙂\n\n".as_bytes();
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(data(&parse_chunks(&bytes)), ["é漢🙂"]);
    }

    #[test]
    fn oversized_line_refused_even_without_newline() {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        let chunk = vec![b'a'; 600];
        p.feed(b"data: ", &mut out).unwrap();
        p.feed(&chunk, &mut out).unwrap();
        assert_eq!(p.feed(&chunk, &mut out), Err(SseError::LineTooLong { limit: 1024 }));
        let mut p = SseParser::default();
        let big = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(p.feed(&big, &mut out), Err(SseError::LineTooLong { limit: MAX_LINE_BYTES }));
    }

    #[test]
    fn oversized_event_refused() {
        let mut p = SseParser::new(100);
        let mut out = Vec::new();
        let line = format!("data: {}\n", "y".repeat(60));
        p.feed(line.as_bytes(), &mut out).unwrap();
        assert_eq!(p.feed(line.as_bytes(), &mut out), Err(SseError::EventTooLarge { limit: 100 }));
    }
}
