//! Parsing a rule: the prescan, the parser on a thread of its own with a known
//! stack, and the byte offsets of the tree's nodes.
//!
//! Three guards stand between an untrusted rule and the node's stack:
//! 1. [`prescan`] refuses deep brackets, long runs of prefix operators and too
//!    many operators before the parser sees the text;
//! 2. the parser (`cel`) counts its own recursion and stops at
//!    [`PARSER_MAX_DEPTH`] nested expressions;
//! 3. everything that recurses over the text or its tree (the parser, its
//!    visitor, the checker, dropping the tree) runs in [`on_rule_stack`], a
//!    thread with a [`RULE_STACK_BYTES`] stack: more than any rule of
//!    [`MAX_RULE_BYTES`](super::MAX_RULE_BYTES) can use with the first two
//!    guards switched off (a test does exactly that).
//!
//! A panic in the parser would end that thread, not the node: the caller sees
//! a thread that ended with an error ([`std::thread::ScopedJoinHandle::join`])
//! and refuses the rule. The release profile unwinds (it does not set
//! `panic = "abort"`), so a panic cannot abort the process. No known input
//! makes `cel` 0.15 panic (the fuzz target stops on any panic).

use super::{walk, RuleErrorKind, MAX_NESTING, MAX_OPERATORS};
use cel::common::ast::{IdedExpr, SourceInfo};

/// Stack of the thread a rule is parsed and checked on. With the parser's depth
/// limit, every nesting bomb of `MAX_RULE_BYTES` in the tests runs in 1 MiB
/// (and not in 512 KiB) in a test build; with the prescan and that limit both
/// off, in 18 MiB (2,047 unclosed brackets: about 16.5 MiB in a release build).
/// The stack holds even that (a test runs it).
/// Only the pages a parse touches are ever mapped.
pub(super) const RULE_STACK_BYTES: usize = 32 << 20;

/// Nested expressions the parser enters before it gives up. The prescan's
/// bracket limit is reached long before this on any rule it lets through.
pub(super) const PARSER_MAX_DEPTH: u16 = 64;

/// Why a rule could not be run on its own stack.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StackError {
    /// The operating system refused a thread.
    Spawn,
    /// The thread ended with an error (a panic in the parser).
    Died,
}

/// Runs `f` on a fresh thread with a [`RULE_STACK_BYTES`] stack and waits for it.
pub(super) fn on_rule_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, StackError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("me2b-rule-check".into())
            .stack_size(RULE_STACK_BYTES)
            .spawn_scoped(s, f)
            .map_err(|_| StackError::Spawn)?;
        handle.join().map_err(|_| StackError::Died)
    })
}

/// The guards in front of the parser: both always on, except in a test that
/// shows what holds without them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Guards {
    pub prescan: bool,
    pub parser_depth: u16,
}

impl Guards {
    pub const ALL: Self = Self {
        prescan: true,
        parser_depth: PARSER_MAX_DEPTH,
    };
}

/// Brackets deeper than [`MAX_NESTING`] and long runs of prefix operators are
/// refused before the (recursive) parser sees them.
pub(super) fn prescan(source: &str) -> Result<(), (RuleErrorKind, usize, String)> {
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let mut operators = 0usize;
    let mut prev_op = false;
    for (i, c) in code_chars(source) {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err((
                        RuleErrorKind::TooLarge,
                        i,
                        format!("brackets nest deeper than {MAX_NESTING}"),
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Outside string literals CEL uses ASCII only: say so here, with the
        // position (cel-parser 0.10's tokenizer panicked on anything else).
        let known = c.is_ascii_alphanumeric()
            || c.is_ascii_whitespace()
            || "()[]{}.,:?!<>=+-*/%&|_\"'".contains(c);
        if !known {
            return Err((
                RuleErrorKind::Syntax,
                i,
                "unexpected character: outside quotes a rule uses letters, digits, spaces and ( ) [ ] { } . , : ? ! < > = + - * / % & | _".into(),
            ));
        }
        // Count runs of operator characters (`&&`, `==`, `<`, `[`, `.` …).
        let op = matches!(
            c,
            '<' | '>'
                | '='
                | '!'
                | '+'
                | '-'
                | '*'
                | '/'
                | '%'
                | '&'
                | '|'
                | '['
                | '.'
                | '?'
                | ':'
                | ','
        );
        if op && !prev_op {
            operators += 1;
            if operators > MAX_OPERATORS {
                return Err((
                    RuleErrorKind::TooLarge,
                    i,
                    format!("more than {MAX_OPERATORS} operators"),
                ));
            }
        }
        if !c.is_whitespace() {
            prev_op = op;
        }
        if matches!(c, '!' | '-') {
            prefix_run += 1;
            if prefix_run > MAX_NESTING {
                return Err((
                    RuleErrorKind::TooLarge,
                    i,
                    format!("more than {MAX_NESTING} prefix operators in a row"),
                ));
            }
        } else if !c.is_whitespace() {
            prefix_run = 0;
        }
    }
    Ok(())
}

/// A parse error: where, what, and whether it is a size limit.
pub(super) struct ParseFailure {
    pub byte: usize,
    pub kind: RuleErrorKind,
    pub message: String,
}

/// Parses `source` (call it on [`on_rule_stack`]): the tree and the byte
/// offsets of its nodes.
pub(super) fn parse(source: &str, depth: u16) -> Result<(IdedExpr, Offsets), ParseFailure> {
    let parsed = cel::parser::Parser::new()
        .max_recursion_depth(depth)
        .parse_with_source_info(source);
    match parsed {
        Ok((expr, info)) => Ok((
            expr,
            Offsets {
                info,
                source: source.to_owned(),
            },
        )),
        Err(errors) => {
            let first = errors.errors.first();
            let message = first.map(|e| e.msg.as_str()).unwrap_or("");
            if message.contains("Recursion limit") {
                return Err(ParseFailure {
                    byte: deepest_bracket(source),
                    kind: RuleErrorKind::TooLarge,
                    message: "the rule nests too deeply".into(),
                });
            }
            let byte = first
                .and_then(|e| {
                    let info = e.source_info.as_ref()?;
                    (e.expr_id != 0)
                        .then(|| info.offset_for(e.expr_id))
                        .flatten()
                        .map(|(s, _)| s as usize)
                })
                .or_else(|| first.map(|e| line_col_to_byte(source, e.pos)))
                .unwrap_or(0);
            // The text ended early: the bracket left open says more than the end.
            if byte >= source.trim_end().len() {
                if let Some(b) = unclosed_bracket(source) {
                    return Err(ParseFailure {
                        byte: b,
                        kind: RuleErrorKind::Syntax,
                        message: "this bracket is never closed".into(),
                    });
                }
            }
            Err(ParseFailure {
                byte,
                kind: RuleErrorKind::Syntax,
                message: if message.is_empty() {
                    "the rule does not parse".into()
                } else {
                    message.chars().take(200).collect()
                },
            })
        }
    }
}

/// The byte offset of the first bracket at the deepest nesting (outside
/// string literals), or 0.
fn deepest_bracket(source: &str) -> usize {
    let (mut depth, mut max, mut at) = (0usize, 0usize, 0usize);
    for (i, c) in code_chars(source) {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > max {
                    (max, at) = (depth, i);
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    at
}

/// The characters of `text` outside string literals, with their byte offsets.
/// An opening quote is yielded; the literal's content and closing quote are not.
pub(super) fn code_chars(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    text.char_indices().filter(move |&(_, c)| {
        if let Some(q) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_string = None;
            }
            return false;
        }
        if c == '"' || c == '\'' {
            in_string = Some(c);
        }
        true
    })
}

/// Brackets closed in `text` that it never opened (outside string literals).
fn unopened_brackets(text: &str) -> usize {
    let mut depth = 0usize;
    let mut unopened = 0usize;
    for (_, c) in code_chars(text) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => unopened += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    unopened
}

/// Brackets opened and not closed in `text` (outside string literals).
fn open_brackets(text: &str) -> usize {
    code_chars(text).fold(0usize, |open, (_, c)| match c {
        '(' | '[' | '{' => open + 1,
        ')' | ']' | '}' => open.saturating_sub(1),
        _ => open,
    })
}

/// The byte offset of the first bracket left open (outside string literals).
fn unclosed_bracket(source: &str) -> Option<usize> {
    let mut open = Vec::new();
    for (i, c) in code_chars(source) {
        match c {
            '(' | '[' | '{' => open.push(i),
            ')' | ']' | '}' => {
                open.pop();
            }
            _ => {}
        }
    }
    open.first().copied()
}

fn line_col_to_byte(source: &str, (line, col): (isize, isize)) -> usize {
    let mut byte = 0usize;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i as isize + 1 == line {
            let text = l.strip_suffix('\n').unwrap_or(l);
            // A column past the line's end (the end of the text) is its end.
            return byte
                + text
                    .char_indices()
                    .nth((col.max(1) - 1) as usize)
                    .map_or(text.len(), |(b, _)| b);
        }
        byte += l.len();
    }
    source.len()
}

/// Byte offsets of every expression node, as the parser recorded them.
pub(super) struct Offsets {
    info: SourceInfo,
    source: String,
}

impl Offsets {
    pub(super) fn start(&self, e: &IdedExpr) -> usize {
        self.info
            .offset_for(e.id)
            .map(|(s, _)| s as usize)
            .unwrap_or(0)
    }

    /// The source span of a whole subtree.
    pub(super) fn span(&self, e: &IdedExpr) -> (usize, usize) {
        let mut lo = usize::MAX;
        let mut hi = 0usize;
        walk(e, &mut |n| {
            if let Some((s, t)) = self.info.offset_for(n.id) {
                lo = lo.min(s as usize);
                hi = hi.max(t as usize + 1);
            }
        });
        if lo == usize::MAX {
            return (0, 0);
        }
        // Opening brackets have no node either (`(region) != "x"`): take as many
        // as the span closes without opening.
        let mut unopened = unopened_brackets(self.source.get(lo..hi).unwrap_or(""));
        while unopened > 0 && lo > 0 {
            lo -= 1;
            match self.source.as_bytes().get(lo) {
                Some(b'(' | b'[' | b'{') => unopened -= 1,
                Some(b')' | b']' | b'}') => unopened += 1,
                _ => {}
            }
        }
        // A negative number literal's node sits on its digits.
        if lo > 0 && self.source.as_bytes().get(lo - 1) == Some(&b'-') {
            let before = self.source.get(..lo - 1).unwrap_or("").trim_end();
            let unary =
                before.is_empty() || before.ends_with(|c: char| "([{,<>=!&|?:+*/%".contains(c));
            if unary
                && self
                    .source
                    .as_bytes()
                    .get(lo)
                    .is_some_and(u8::is_ascii_digit)
            {
                lo -= 1;
            }
        }
        // A global call's node sits on its `(`: take the function name too.
        if self.source.as_bytes().get(lo) == Some(&b'(') {
            while lo > 0
                && self
                    .source
                    .as_bytes()
                    .get(lo - 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                lo -= 1;
            }
        }
        // Closing brackets have no node of their own (`[...]`, `f(...)`): take
        // as many as the span leaves open.
        let mut open = open_brackets(self.source.get(lo..hi).unwrap_or(""));
        let bytes = self.source.as_bytes();
        let mut end = hi;
        while open > 0 && end < bytes.len() {
            match bytes.get(end) {
                Some(b')' | b']' | b'}') => open -= 1,
                Some(b'(' | b'[' | b'{') => open += 1,
                _ => {}
            }
            end += 1;
        }
        (lo, if open == 0 { end } else { hi })
    }
}
