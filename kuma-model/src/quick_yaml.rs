//! A quick reader for the YAML that resource files are nearly always written
//! in: block mappings and sequences indented with spaces, flow `[...]` and
//! `{...}` collections (JSON included), plain and quoted one-line scalars,
//! comments and `---` between documents.
//!
//! yaml-rust2 reads about 23 MB/s; `validate` and `render` spent most of
//! their time there. This reader sends the same events, with the same lines,
//! to the same tree builder (`source::Builder`), its scalars borrowed from
//! the text wherever they are written as they read (everything but escapes
//! and `|` blocks). It gives up at the first thing it does not read:
//! anchors, aliases, tags, folded scalars (`>`), plain or quoted scalars
//! over several lines, escapes other than JSON's and `\0`, empty sequence
//! entries, tabs, carriage returns, bytes outside printable ASCII, and
//! anything invalid. The caller then reads the whole text again with
//! yaml-rust2, so the result, errors included, is always yaml-rust2's. A
//! differential test (`source::tests`) holds the two to the same trees, lines
//! included, on random and mutated documents and on every YAML file of the
//! repository and of the Kuma reference data.

use std::borrow::Cow;

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

/// What the reader sends: yaml-rust2's events, except scalars, which borrow
/// the text when it holds them as they read (no escapes, one line).
pub(crate) enum Token<'t> {
    Event(Event),
    Scalar(Cow<'t, str>, TScalarStyle),
}

/// The text uses YAML this reader leaves to yaml-rust2, or the builder
/// found a problem (which yaml-rust2's reading reports the same way).
#[derive(Debug, PartialEq)]
pub(crate) struct GiveUp;

type Step = Result<(), GiveUp>;

/// Sends the events of every document of `text` to `emit`, each with its
/// 1-based line. `emit` returns `Err` to stop.
pub(crate) fn read<'t>(text: &'t str, max_depth: usize, emit: impl FnMut(Token<'t>, usize) -> Step) -> Step {
    // Printable ASCII and newlines only: everything else (tabs, CR,
    // non-ASCII, control characters) has rules this reader does not keep.
    // Folded without stopping early, so the check compiles to vector code:
    // nearly every text passes it.
    if !text.bytes().fold(true, |ok, b| ok & (b == b'\n' || (0x20..0x7f).contains(&b))) {
        return Err(GiveUp);
    }
    let mut r = Reader { text, s: text.as_bytes(), pos: 0, line: 1, line_start: 0, depth: 0, max_depth, emit };
    r.stream()
}

struct Reader<'a, F> {
    text: &'a str,
    /// `text`'s bytes.
    s: &'a [u8],
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
    /// Where `line` starts.
    line_start: usize,
    depth: usize,
    max_depth: usize,
    emit: F,
}

/// Whether a plain scalar may start with `b` followed by `next`: not with
/// an indicator, except `-`, `?` and `:` directly followed by something
/// other than a flow indicator (`-1`, `::1`).
fn is_plain_start(b: u8, next: Option<u8>) -> bool {
    match b {
        b'-' | b'?' | b':' => next.is_some_and(|n| n != b' ' && n != b'\n' && !is_flow_indicator(n)),
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@'
        | b'`' | b' ' | b'\n' => false,
        _ => true,
    }
}

/// Bytes that extend a plain scalar in a flow collection whatever comes
/// around them: printable ASCII except space and the bytes `flow_scalar`
/// looks at (`#`, `-`, `:` and the flow indicators).
const EXTENDS_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        table[b] = !matches!(b as u8, b'#' | b'-' | b':' | b',' | b'[' | b']' | b'{' | b'}');
        b += 1;
    }
    table
};

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

impl<'a, F: FnMut(Token<'a>, usize) -> Step> Reader<'a, F> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    fn col(&self) -> usize {
        self.pos - self.line_start
    }

    fn emit(&mut self, event: Event, line: usize) -> Step {
        (self.emit)(Token::Event(event), line)
    }

    fn scalar(&mut self, text: Cow<'a, str>, style: TScalarStyle, line: usize) -> Step {
        (self.emit)(Token::Scalar(text, style), line)
    }

    /// The text from byte `start` to `end`, borrowed. The text was checked
    /// to be ASCII, so every byte starts a character.
    fn slice(&self, start: usize, end: usize) -> Result<Cow<'a, str>, GiveUp> {
        self.text.get(start..end).map(Cow::Borrowed).ok_or(GiveUp)
    }

    fn enter(&mut self) -> Step {
        self.depth += 1;
        if self.depth > self.max_depth { Err(GiveUp) } else { Ok(()) }
    }

    fn newline(&mut self) {
        // `pos` is at a '\n'.
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos - start
    }

    fn skip_to_line_end(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'\n' {
                break;
            }
            self.pos += 1;
        }
    }

    /// After a value: spaces, then a comment or nothing, then the line ends.
    fn end_of_line(&mut self) -> Step {
        self.skip_spaces();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.newline();
                Ok(())
            }
            // A comment starts after a space.
            Some(b'#') if self.s[self.pos - 1] == b' ' => {
                self.skip_to_line_end();
                if self.peek().is_some() {
                    self.newline();
                }
                Ok(())
            }
            _ => Err(GiveUp),
        }
    }

    /// From the start of a line, past blank and comment-only lines, to the
    /// first character of the next line with content. `false` at the end.
    fn next_content(&mut self) -> bool {
        loop {
            self.skip_spaces();
            match self.peek() {
                None => return false,
                Some(b'\n') => self.newline(),
                Some(b'#') => {
                    self.skip_to_line_end();
                    if self.peek().is_none() {
                        return false;
                    }
                    self.newline();
                }
                Some(_) => return true,
            }
        }
    }

    /// `---` or `...` at the start of a line, followed by a space or the
    /// line's end.
    fn at_marker(&self, marker: &[u8]) -> bool {
        self.col() == 0
            && self.s[self.pos..].starts_with(marker)
            && matches!(self.at(self.pos + 3), None | Some(b' ') | Some(b'\n'))
    }

    /// A `-` entry marker: followed by a space or the line's end.
    fn at_entry(&self) -> bool {
        self.peek() == Some(b'-') && matches!(self.at(self.pos + 1), None | Some(b' ') | Some(b'\n'))
    }

    fn stream(&mut self) -> Step {
        loop {
            if !self.next_content() {
                return Ok(());
            }
            if self.at_marker(b"---") {
                self.pos += 3;
                self.end_of_line()?;
                continue;
            }
            if self.col() != 0 || self.at_marker(b"...") || self.peek() == Some(b'%') {
                return Err(GiveUp);
            }
            self.emit(Event::DocumentStart, self.line)?;
            match self.peek() {
                Some(b'[' | b'{') => {
                    self.flow(None)?;
                    self.end_of_line()?;
                }
                _ if self.at_entry() => self.block_sequence(0, false)?,
                _ => self.block_mapping(0)?,
            }
            self.emit(Event::DocumentEnd, self.line)?;
            // The next document must start with `---`.
            if self.next_content() && !self.at_marker(b"---") {
                return Err(GiveUp);
            }
        }
    }

    /// A block mapping whose keys are at column `indent`; `pos` is at its
    /// first key.
    fn block_mapping(&mut self, indent: usize) -> Step {
        self.enter()?;
        self.emit(Event::MappingStart(0, None), self.line)?;
        loop {
            self.key()?;
            self.block_value(indent, true)?;
            if !self.next_content() || self.at_marker(b"---") || self.at_marker(b"...") {
                break;
            }
            match self.col() {
                c if c < indent => break,
                c if c > indent => return Err(GiveUp),
                _ if self.at_entry() => return Err(GiveUp),
                _ => {}
            }
        }
        self.depth -= 1;
        self.emit(Event::MappingEnd, self.line)
    }

    /// A block mapping key and its `:`.
    fn key(&mut self) -> Step {
        let line = self.line;
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                let text = self.quoted(q)?;
                self.scalar(text, style_of(q), line)?;
                self.skip_spaces();
                if self.peek() != Some(b':') || !matches!(self.at(self.pos + 1), None | Some(b' ') | Some(b'\n')) {
                    return Err(GiveUp);
                }
                self.pos += 1;
                Ok(())
            }
            Some(b) if is_plain_start(b, self.at(self.pos + 1)) => {
                let start = self.pos;
                let end = self.plain_key_end().ok_or(GiveUp)?;
                // yaml-rust2 limits a simple key to 1,024 characters.
                if end - start > 1000 {
                    return Err(GiveUp);
                }
                self.scalar(self.slice(start, end)?, TScalarStyle::Plain, line)?;
                // Past the `:`.
                self.pos += 1;
                Ok(())
            }
            _ => Err(GiveUp),
        }
    }

    /// Moves `pos` to the `:` that ends a plain key on this line; returns
    /// the key's end with trailing spaces trimmed.
    fn plain_key_end(&mut self) -> Option<usize> {
        let start = self.pos;
        let mut i = start;
        while let Some(b) = self.at(i) {
            match b {
                b'\n' => return None,
                b'#' if self.s[i - 1] == b' ' => return None,
                b':' if matches!(self.at(i + 1), None | Some(b' ') | Some(b'\n')) => {
                    let mut end = i;
                    while end > start && self.s[end - 1] == b' ' {
                        end -= 1;
                    }
                    self.pos = i;
                    return Some(end);
                }
                _ => i += 1,
            }
        }
        None
    }

    /// What follows a mapping's `:` (`map`) or a sequence's `-`, for a
    /// collection at column `indent`.
    fn block_value(&mut self, indent: usize, map: bool) -> Step {
        // Every `:` and `-` that gets here is followed by a space or the
        // line's end.
        let spaces = self.skip_spaces();
        let line = self.line;
        match self.peek() {
            None | Some(b'\n') | Some(b'#') => {
                if self.peek() == Some(b'#') {
                    if spaces == 0 {
                        return Err(GiveUp);
                    }
                    self.skip_to_line_end();
                }
                if self.peek().is_some() {
                    self.newline();
                }
                if self.next_content() && !self.at_marker(b"---") && !self.at_marker(b"...") {
                    let col = self.col();
                    if col > indent {
                        return if self.at_entry() { self.block_sequence(col, false) } else { self.block_mapping(col) };
                    }
                    if col == indent && map && self.at_entry() {
                        return self.block_sequence(col, true);
                    }
                }
                if !map {
                    // An empty sequence entry: yaml-rust2 gives it the
                    // position of what follows, which this reader does not
                    // track.
                    return Err(GiveUp);
                }
                // An empty value. Its line is the key's (the builder gives
                // every null mapping value its key's line).
                self.scalar(Cow::Borrowed("~"), TScalarStyle::Plain, line)
            }
            Some(b'[' | b'{') => {
                self.flow(Some(indent))?;
                self.end_of_line()
            }
            Some(b'|') => self.literal(indent),
            Some(q @ (b'\'' | b'"')) => {
                if !map && self.line_has_key() {
                    return self.block_mapping(self.col());
                }
                let text = self.quoted(q)?;
                self.scalar(text, style_of(q), line)?;
                self.end_of_line()
            }
            Some(b) if is_plain_start(b, self.at(self.pos + 1)) => {
                if !map && self.line_has_key() {
                    return self.block_mapping(self.col());
                }
                let start = self.pos;
                let mut end = start;
                while let Some(b) = self.peek() {
                    match b {
                        b'\n' => break,
                        b'#' if self.s[self.pos - 1] == b' ' => break,
                        // A `: ` in a value is an error in YAML.
                        b':' if matches!(self.at(self.pos + 1), None | Some(b' ') | Some(b'\n')) => {
                            return Err(GiveUp);
                        }
                        b' ' => {}
                        _ => end = self.pos + 1,
                    }
                    self.pos += 1;
                }
                self.scalar(self.slice(start, end)?, TScalarStyle::Plain, line)?;
                self.end_of_line()
            }
            _ => Err(GiveUp),
        }
    }

    /// A literal block scalar (`|`, or `|-` without its final line break),
    /// as PEM certificates are written, inside a collection at column
    /// `indent`; `pos` is at the `|`. Ends at the start of the next line
    /// with content.
    fn literal(&mut self, indent: usize) -> Step {
        // yaml-rust2 gives the scalar the line of its first line of text.
        let mut line = self.line;
        self.pos += 1;
        let strip = self.peek() == Some(b'-');
        if strip {
            self.pos += 1;
        }
        // `|+`, an explicit indentation, or anything else: left to
        // yaml-rust2.
        if !matches!(self.peek(), None | Some(b' ' | b'\n')) {
            return Err(GiveUp);
        }
        self.end_of_line()?;
        let mut text = Vec::new();
        // The indentation of the text, set by its first line.
        let mut content_indent: Option<usize> = None;
        // Line breaks not yet written: they go in only before more text.
        let mut breaks = 0;
        loop {
            let start = self.pos;
            let spaces = self.skip_spaces();
            match self.peek() {
                None | Some(b'\n') => {
                    // An empty line. With as many spaces as the text's
                    // indentation or more, it may be text of spaces: left
                    // to yaml-rust2.
                    if spaces > 0 && spaces >= content_indent.unwrap_or(indent + 1) {
                        return Err(GiveUp);
                    }
                    if self.peek().is_none() {
                        break;
                    }
                    self.newline();
                    breaks += 1;
                }
                Some(_) => {
                    let n = match content_indent {
                        Some(n) if spaces >= n => n,
                        None if spaces > indent => {
                            line = self.line;
                            *content_indent.insert(spaces)
                        }
                        // Less indented: the scalar has ended. The caller
                        // goes on from this line.
                        _ => {
                            self.pos = start;
                            break;
                        }
                    };
                    text.extend(std::iter::repeat_n(b'\n', breaks));
                    breaks = 1;
                    let from = start + n;
                    self.skip_to_line_end();
                    text.extend_from_slice(&self.s[from..self.pos]);
                    if self.peek().is_none() {
                        // Text without a final line break: left to yaml-rust2.
                        return Err(GiveUp);
                    }
                    self.newline();
                }
            }
        }
        if content_indent.is_none() {
            // No text at all.
            return Err(GiveUp);
        }
        if !strip {
            text.push(b'\n');
        }
        let text = String::from_utf8(text).map_err(|_| GiveUp)?;
        self.scalar(Cow::Owned(text), TScalarStyle::Literal, line)?;
        // The caller goes on from the first line with content.
        self.next_content();
        Ok(())
    }

    /// Whether the rest of the line is a mapping key and its `:` (a sequence
    /// entry holding a mapping, `- name: x`).
    fn line_has_key(&self) -> bool {
        let mut i = self.pos;
        if let Some(q @ (b'\'' | b'"')) = self.peek() {
            i += 1;
            while let Some(b) = self.at(i) {
                if b == b'\n' {
                    return false;
                }
                i += 1;
                if b == q {
                    if q == b'\'' && self.at(i) == Some(b'\'') {
                        i += 1;
                        continue;
                    }
                    break;
                }
            }
            while self.at(i) == Some(b' ') {
                i += 1;
            }
            return self.at(i) == Some(b':');
        }
        while let Some(b) = self.at(i) {
            match b {
                b'\n' => return false,
                b'#' if self.s[i - 1] == b' ' => return false,
                b':' if matches!(self.at(i + 1), None | Some(b' ') | Some(b'\n')) => return true,
                _ => i += 1,
            }
        }
        false
    }

    /// A block sequence whose `-` are at column `indent`. `indentless` when
    /// it is a mapping value at the mapping's own column (`key:\n- a`).
    fn block_sequence(&mut self, indent: usize, indentless: bool) -> Step {
        self.enter()?;
        self.emit(Event::SequenceStart(0, None), self.line)?;
        loop {
            // At the `-`.
            self.pos += 1;
            let spaces = self.skip_spaces();
            if self.at_entry() || (spaces == 0 && !matches!(self.peek(), None | Some(b'\n'))) {
                // `- - a`, or something directly after the `-`.
                return Err(GiveUp);
            }
            self.block_value(indent, false)?;
            if !self.next_content() || self.at_marker(b"---") || self.at_marker(b"...") {
                break;
            }
            match self.col() {
                c if c < indent => break,
                c if c > indent => return Err(GiveUp),
                _ if self.at_entry() => {}
                _ if indentless => break,
                _ => return Err(GiveUp),
            }
        }
        self.depth -= 1;
        self.emit(Event::SequenceEnd, self.line)
    }

    /// A quoted scalar on one line; `pos` is at the opening quote and ends
    /// past the closing one. Double quotes take JSON's escapes and `\0`.
    /// Borrowed from the text unless it holds an escape.
    fn quoted(&mut self, q: u8) -> Result<Cow<'a, str>, GiveUp> {
        self.pos += 1;
        let (s, start) = (self.s, self.pos);
        // Made at the first escape, from the text before it.
        let mut out: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(GiveUp),
                Some(b'\\') if q == b'"' => {
                    let out = out.get_or_insert_with(|| s[start..self.pos].to_vec());
                    let escaped = match self.at(self.pos + 1).ok_or(GiveUp)? {
                        b'u' => {
                            let hex = self.s.get(self.pos + 2..self.pos + 6).ok_or(GiveUp)?;
                            let hex = std::str::from_utf8(hex).map_err(|_| GiveUp)?;
                            let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).ok_or(GiveUp)?;
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            self.pos += 6;
                            continue;
                        }
                        b @ (b'"' | b'\\' | b'/') => b,
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'0' => 0,
                        _ => return Err(GiveUp),
                    };
                    out.push(escaped);
                    self.pos += 2;
                }
                Some(b) if b == q => {
                    let end = self.pos;
                    self.pos += 1;
                    if q == b'\'' && self.peek() == Some(b'\'') {
                        out.get_or_insert_with(|| s[start..end].to_vec()).push(b'\'');
                        self.pos += 1;
                    } else {
                        return match out {
                            None => self.slice(start, end),
                            Some(bytes) => String::from_utf8(bytes).map(Cow::Owned).map_err(|_| GiveUp),
                        };
                    }
                }
                Some(b) => {
                    if let Some(out) = &mut out {
                        out.push(b);
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// Spaces, line breaks and comments inside a flow collection. Lines
    /// must be indented more than the block collection around it.
    fn flow_space(&mut self, block_indent: Option<usize>) -> Step {
        let mut after_space = self.pos == 0 || matches!(self.s[self.pos - 1], b' ' | b'\n');
        loop {
            match self.peek() {
                Some(b' ') => {
                    self.pos += 1;
                    after_space = true;
                }
                Some(b'\n') => {
                    self.newline();
                    self.skip_spaces();
                    if self.at_marker(b"---") || self.at_marker(b"...") {
                        return Err(GiveUp);
                    }
                    if let Some(indent) = block_indent
                        && self.col() <= indent
                        && self.peek() != Some(b'\n')
                    {
                        return Err(GiveUp);
                    }
                    after_space = true;
                }
                Some(b'#') if after_space => self.skip_to_line_end(),
                _ => return Ok(()),
            }
        }
    }

    /// A flow collection; `pos` is at its `[` or `{` and ends past its
    /// closing bracket.
    fn flow(&mut self, block_indent: Option<usize>) -> Step {
        self.enter()?;
        let line = self.line;
        let mapping = self.peek() == Some(b'{');
        let (start, close, end) = if mapping {
            (Event::MappingStart(0, None), b'}', Event::MappingEnd)
        } else {
            (Event::SequenceStart(0, None), b']', Event::SequenceEnd)
        };
        self.pos += 1;
        self.emit(start, line)?;
        loop {
            self.flow_space(block_indent)?;
            if self.peek() == Some(close) {
                break;
            }
            if mapping {
                self.flow_key(block_indent)?;
            }
            self.flow_node(block_indent)?;
            self.flow_space(block_indent)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => break,
                _ => return Err(GiveUp),
            }
        }
        self.pos += 1;
        self.depth -= 1;
        self.emit(end, self.line)
    }

    /// A flow mapping's key, its `:` on the same line, and the space up to
    /// a value.
    fn flow_key(&mut self, block_indent: Option<usize>) -> Step {
        let quoted = matches!(self.peek(), Some(b'\'' | b'"'));
        self.flow_scalar()?;
        self.skip_spaces();
        if self.peek() != Some(b':') {
            return Err(GiveUp);
        }
        self.pos += 1;
        // After a plain key, `:` must be followed by a space.
        if !quoted && !matches!(self.peek(), Some(b' ') | Some(b'\n')) {
            return Err(GiveUp);
        }
        self.flow_space(block_indent)?;
        if matches!(self.peek(), None | Some(b',') | Some(b'}')) {
            // An empty value: left to yaml-rust2.
            return Err(GiveUp);
        }
        Ok(())
    }

    fn flow_node(&mut self, block_indent: Option<usize>) -> Step {
        match self.peek() {
            Some(b'[' | b'{') => self.flow(block_indent),
            _ => {
                self.flow_scalar()?;
                // A plain scalar followed by a line break might go on over
                // the next line; only a separator or closing bracket after
                // the break shows that it does not.
                let save = (self.pos, self.line, self.line_start);
                self.skip_spaces();
                if self.peek() == Some(b'\n') {
                    self.flow_space(block_indent)?;
                    if !matches!(self.peek(), Some(b',' | b']' | b'}')) {
                        return Err(GiveUp);
                    }
                }
                (self.pos, self.line, self.line_start) = save;
                Ok(())
            }
        }
    }

    /// A quoted or plain scalar inside a flow collection.
    fn flow_scalar(&mut self) -> Step {
        let line = self.line;
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                let text = self.quoted(q)?;
                self.scalar(text, style_of(q), line)
            }
            Some(b) if is_plain_start(b, self.at(self.pos + 1)) && !is_flow_indicator(b) => {
                let start = self.pos;
                let mut end = start;
                while let Some(b) = self.peek() {
                    if EXTENDS_PLAIN[usize::from(b)] {
                        self.pos += 1;
                        end = self.pos;
                        continue;
                    }
                    match b {
                        b'\n' => break,
                        b if is_flow_indicator(b) => break,
                        b'#' if self.s[self.pos - 1] == b' ' => break,
                        // yaml-rust2 refuses a word of a flow scalar that
                        // starts with `-` and a flow indicator.
                        b'-' if self.s[self.pos - 1] == b' '
                            && self.at(self.pos + 1).is_some_and(is_flow_indicator) =>
                        {
                            return Err(GiveUp);
                        }
                        b':' => match self.at(self.pos + 1) {
                            None | Some(b' ' | b'\n') => break,
                            // `{a:}`: left to yaml-rust2.
                            Some(n) if is_flow_indicator(n) => return Err(GiveUp),
                            // `host:80` and URLs go on.
                            Some(_) => end = self.pos + 1,
                        },
                        b' ' => {}
                        _ => end = self.pos + 1,
                    }
                    self.pos += 1;
                }
                self.pos = end;
                self.scalar(self.slice(start, end)?, TScalarStyle::Plain, line)
            }
            _ => Err(GiveUp),
        }
    }
}

fn style_of(q: u8) -> TScalarStyle {
    if q == b'\'' { TScalarStyle::SingleQuoted } else { TScalarStyle::DoubleQuoted }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use crate::source::{full, quick};

    /// Whenever the quick reader reads a text, yaml-rust2 reads the same
    /// trees from it, lines included.
    fn agrees(text: &str) -> bool {
        match quick(text) {
            Some(docs) => {
                assert_eq!(Ok(docs), full(text), "the quick reader differs from yaml-rust2 on:\n{text}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn reads_what_resource_files_are_written_in() {
        let texts = [
            "type: Mesh\nname: default\n",
            "# a comment\n---\ntype: MeshGateway # why\nname: gw\nmesh: default\nselectors:\n- match:\n    kuma.io/service: gw\nconf:\n  listeners:\n  - port: 8080\n    protocol: HTTP\n    hostname: '*.example.com'\n    tags: {port: http/8080}\n---\n\n---\na: 1\n",
            "rules:\n  - matches: [{path: {match: REGEX, value: '/r0/[a-z]+/[0-9]+'}, headers: [{match: EXACT, name: x-tenant, value: t1}]}]\n    backends: [{destination: {kuma.io/service: web}}]\n",
            "a:\nb: ~\nc: ''\nd: \"\"\ne: 'it''s'\nf: -1\ng: 1.5e3\nh: [a, 'b', \"c\", [d], {e: f}, ]\n",
            "{\"type\": \"Mesh\", \"name\": \"default\",\n \"mtls\": {\"enabled\": true,\n   \"backends\": []}\n}\n",
            "{\"a\":1,\"b\":[1,2]}",
            "x:\n  - a\n  -   b  # two spaces\n  - 'c'\ny:\n- - \n",
            "k: v # comment\n#\n  # indented comment\nl: [a,\n  b # comment\n  ]\n",
            "a: b c  d  \n'q k': 1\n\"r k\" : 2\n",
        ];
        let read: Vec<bool> = texts.iter().map(|t| agrees(t)).collect();
        // The last entry of the second text's `y` is `- - `: left to yaml-rust2.
        assert_eq!(read, [true, true, true, true, true, true, false, true, true]);
    }

    #[test]
    fn leaves_the_rest_to_yaml_rust2() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |+\n  text\n",
            "a: >\n  text\n",
            "a: one\n  two\n",
            "a: 'one\n  two'\n",
            "a: \"x\\Ly\"\n",
            "a:\n\t- b\n",
            "a: 1\r\nb: 2\r\n",
            "a: caf\u{e9}\n",
            "- a\n-\n- b\n",
            "{a: }\n",
            "[a: b]\n",
            "a: http://x\n? b\n: c\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n...\n",
            "a: 1\nb\n",
            "a: 1\n  b: 2\n",
            "a: b: c\n",
            "plain scalar\n",
            "a: [1, 2\n",
        ] {
            assert!(!agrees(text), "read quickly: {text:?}");
        }
        // Errors are always yaml-rust2's own.
        assert!(quick("a: 1\na: 2\n").is_none());
        assert!(full("a: 1\na: 2\n").is_err());
    }

    /// The YAML, JSON and YML files of the repository and of the Kuma
    /// reference data: each read quickly gives yaml-rust2's trees.
    #[test]
    fn files_of_the_repository_and_kuma_reference_data_agree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let shared = std::env::var_os("KUMA_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("../shared"));
        assert!(
            shared.join("peer").is_dir(),
            "the Kuma reference data is missing: expected {} (set KUMA_SHARED_DIR). This test does not pass without it.",
            shared.display()
        );
        let mut files = Vec::new();
        collect(&root, &mut files);
        collect(&shared, &mut files);
        let (mut quick_files, mut total) = (0, 0);
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else { continue };
            if text.len() > crate::source::MAX_TEXT_BYTES {
                continue;
            }
            total += 1;
            if agrees(text.strip_prefix('\u{feff}').unwrap_or(&text)) {
                quick_files += 1;
            }
        }
        assert!(total > 500, "only {total} files found");
        // Most files are in the subset: the quick reader is not quietly
        // giving up on everything.
        // 486 of 539 when this was written; the rest are Envoy goldens with
        // `|+` certificates and schemas with scalars over several lines.
        assert!(quick_files * 100 > total * 85, "{quick_files} of {total} files read quickly");
        // The bundled example is read quickly.
        let example =
            std::fs::read_to_string(root.join("examples/edge-gateway/gateway.yaml")).expect("the bundled example");
        assert!(agrees(&example));
    }

    fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    collect(&path, out);
                }
            } else if name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json") {
                out.push(path);
            }
        }
    }

    /// Scalars the quick reader leaves to yaml-rust2 somewhere, or that
    /// are invalid somewhere.
    #[rustfmt::skip]
    const OTHER: [&str; 33] = [
        "a,b", "a[0]", "a#b", "a:b", "http://x", "a #b", "'", "\"", "[", "]", "{", "}", "-", "? x", "*a", "&a b",
        "!t x", "|", ">", ":", "%", "@", "`", "\"a\\tb\"", "::1", "?x", ":x", "\"a\\\"b\\\\\"",
        "\"\\u00e9\\u0041\"", "\"\\ud800\"", "\"\\x41\"", "-[", "a:]",
    ];
    /// Scalars the quick reader always reads, in flow and block context.
    #[rustfmt::skip]
    const SAFE: [&str; 16] = [
        "a", "web", "kuma.io/service", "1", "-2", "1.5", "true", "null", "~", "x y", "'q'", "'it''s'", "\"d\"",
        "\"\"", "''", "-x",
    ];

    /// Builds a document from a stream of choices.
    struct Gen<'a> {
        choices: &'a [u8],
        at: usize,
        safe: bool,
        out: String,
    }

    impl Gen<'_> {
        fn pick(&mut self, n: usize) -> usize {
            let c = self.choices.get(self.at).copied().unwrap_or(0) as usize;
            self.at += 1;
            c % n
        }

        fn scalar(&mut self) -> &'static str {
            // Mostly scalars the quick reader reads, so that most documents
            // get past their first few scalars.
            if self.safe || self.pick(8) > 0 { SAFE[self.pick(SAFE.len())] } else { OTHER[self.pick(OTHER.len())] }
        }

        fn key(&mut self) -> String {
            let k = self.pick(6);
            if self.safe {
                ["a", "b", "c", "'d'", "\"e\"", "kuma.io/x"][k].to_string()
            } else {
                self.scalar().to_string()
            }
        }

        /// A value after `key:` (`map`) or `- ` at block indentation `indent`.
        fn block_value(&mut self, indent: usize, depth: usize, map: bool) {
            let kinds = if depth > 3 { 3 } else { 6 };
            match self.pick(kinds) {
                0 | 1 => {
                    let s = self.scalar();
                    self.out.push(' ');
                    self.out.push_str(s);
                    self.out.push('\n');
                }
                2 => {
                    self.out.push(' ');
                    self.flow(depth, indent);
                    self.out.push('\n');
                }
                3 => {
                    self.out.push('\n');
                    let inner = indent + 1 + self.pick(3);
                    self.block_map(inner, depth + 1);
                }
                4 => {
                    self.out.push('\n');
                    // Only a mapping's sequence may start at its own column.
                    let inner = indent + self.pick(3) + usize::from(!map);
                    self.block_seq(inner, depth + 1);
                }
                5 if self.pick(2) == 0 => {
                    // A literal block scalar.
                    let headers: &[&str] =
                        if self.safe { &["|", "|-", "|  # c"] } else { &["|", "|-", "|+", "|2", ">", "|-2"] };
                    let header = headers[self.pick(headers.len())];
                    self.out.push(' ');
                    self.out.push_str(header);
                    self.out.push('\n');
                    let text_indent = indent + 1 + self.pick(3);
                    for i in 0..1 + self.pick(4) {
                        let lines = [
                            "-----BEGIN CERTIFICATE-----",
                            "MIIB # not a comment",
                            "",
                            "  more indented",
                            "a: b",
                            "'q'",
                        ];
                        let mut line = lines[self.pick(lines.len())];
                        if i == 0 && self.safe && (line.is_empty() || line.starts_with(' ')) {
                            line = "first";
                        }
                        if line.is_empty() {
                            if !self.safe {
                                let spaces = " ".repeat(self.pick(6));
                                self.out.push_str(&spaces);
                            }
                        } else {
                            self.out.push_str(&" ".repeat(text_indent));
                            self.out.push_str(line);
                        }
                        self.out.push('\n');
                    }
                }
                _ => {
                    // A sequence entry holding a mapping on its own line.
                    self.out.push('\n');
                    let inner = indent + 2;
                    self.block_map(inner, depth + 1);
                }
            }
        }

        fn block_map(&mut self, indent: usize, depth: usize) {
            let n = 1 + self.pick(3);
            for safe_key in ["a", "b", "c"].into_iter().take(n) {
                self.out.push_str(&" ".repeat(indent));
                let key = if self.safe { safe_key.to_string() } else { self.key() };
                self.out.push_str(&key);
                self.out.push(':');
                if self.pick(8) == 0 {
                    let end = if self.pick(2) == 0 { "\n" } else { "  # c\n" };
                    self.out.push_str(end);
                } else {
                    self.block_value(indent, depth, true);
                }
                if self.pick(6) == 0 {
                    let spaces = " ".repeat(self.pick(5));
                    self.out.push_str(&format!("{spaces}# comment\n\n"));
                }
            }
        }

        fn block_seq(&mut self, indent: usize, depth: usize) {
            for _ in 0..1 + self.pick(3) {
                self.out.push_str(&" ".repeat(indent));
                self.out.push('-');
                if self.pick(3) == 0 {
                    // `- key: value` with more keys under it.
                    self.out.push(' ');
                    let inner = indent + 2;
                    let n = 1 + self.pick(2);
                    for (i, key) in ["a", "b"].iter().take(n).enumerate() {
                        if i > 0 {
                            self.out.push_str(&" ".repeat(inner));
                        }
                        self.out.push_str(key);
                        self.out.push(':');
                        self.block_value(inner, depth + 1, true);
                    }
                } else {
                    self.block_value(indent, depth, false);
                }
            }
        }

        /// A flow collection inside a block collection at column `indent`:
        /// its lines go deeper.
        fn flow(&mut self, depth: usize, indent: usize) {
            let n = self.pick(4);
            let map = self.pick(2) == 0;
            self.out.push(if map { '{' } else { '[' });
            for i in 0..n {
                if i > 0 {
                    let separator = [", ", ",", " , ", ",\n"][self.pick(4)];
                    self.out.push_str(separator);
                    if separator.ends_with('\n') {
                        let spaces = " ".repeat(if self.safe { indent + 1 + self.pick(2) } else { self.pick(5) });
                        self.out.push_str(&spaces);
                    }
                }
                if map {
                    // Distinct keys: a repeated key with another value is an error.
                    let k = if self.safe { ["a", "'b'", "\"c\""][i].to_string() } else { self.key() };
                    self.out.push_str(&k);
                    self.out.push_str(": ");
                }
                if depth < 4 && self.pick(4) == 0 {
                    self.flow(depth + 1, indent);
                } else {
                    let s = self.scalar();
                    self.out.push_str(s);
                }
            }
            if n > 0 && self.pick(5) == 0 {
                self.out.push(',');
            }
            self.out.push(if map { '}' } else { ']' });
        }

        fn document(choices: &[u8], safe: bool) -> String {
            let mut g = Gen { choices, at: 0, safe, out: String::new() };
            for i in 0..1 + g.pick(2) {
                if i > 0 || g.pick(2) == 0 {
                    g.out.push_str("---\n");
                }
                match g.pick(4) {
                    0 => {
                        g.flow(0, 0);
                        g.out.push('\n');
                    }
                    1 => g.block_seq(0, 0),
                    _ => g.block_map(0, 0),
                }
            }
            g.out
        }
    }

    /// Small edits of the kinds that change how YAML reads.
    fn mutate(text: &str, edits: &[(u16, u8)]) -> String {
        const ALPHABET: &[u8] = b" -:#'\"[]{},\n?&*!|>%@a1\t\\";
        let mut bytes = text.as_bytes().to_vec();
        for &(at, what) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at as usize % bytes.len();
            match what % 3 {
                0 => bytes.insert(at, ALPHABET[what as usize / 3 % ALPHABET.len()]),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes[at] = ALPHABET[what as usize / 3 % ALPHABET.len()],
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn documents_in_the_subset_are_read_quickly_and_the_same(choices in prop::collection::vec(any::<u8>(), 0..200)) {
            let text = Gen::document(&choices, true);
            prop_assert!(agrees(&text), "given up on:\n{}", text);
        }

        #[test]
        fn any_document_read_quickly_is_read_the_same(
            choices in prop::collection::vec(any::<u8>(), 0..200),
            edits in prop::collection::vec((any::<u16>(), any::<u8>()), 0..4),
        ) {
            let text = mutate(&Gen::document(&choices, false), &edits);
            agrees(&text);
        }
    }
}
