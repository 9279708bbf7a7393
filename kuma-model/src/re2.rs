//! What Envoy does with a `safe_regex` beyond its syntax: RE2 refuses
//! repetition counts over 1,000, and Envoy refuses a regex whose compiled
//! RE2 program has more than 100 instructions (its default
//! `re2.max_program_size.error_level`).
//!
//! The program size is estimated from the regex as written, erring high:
//! each literal byte and each byte range of a class (in UTF-8) is one
//! instruction, a capture adds two, a repetition operator two (and each
//! repeated copy of something that can match the empty string three more),
//! an alternation one per branch, repetitions are expanded as RE2 expands
//! them, and four more are the program's own. For
//! `[0-9a-f]{64}` that is 2 x 64 + 4 = 132, RE2's own count. A regex this
//! estimate accepts, Envoy accepts (the differential test against Envoy,
//! `kuma-xds-gen/tests/envoy_differential.rs`, keeps it honest); near the
//! limit it may refuse a few that Envoy would take.

use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};

/// Envoy's default limit on a regex's RE2 program size.
pub const MAX_PROGRAM_SIZE: usize = 100;
/// RE2's largest repetition count.
pub const MAX_REPEAT: u32 = 1000;

/// Why Envoy would refuse a regex, as a violation's message: invalid
/// syntax, or too much for RE2 or Envoy.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    let cost = match plain_cost(expr) {
        Some(cost) => cost,
        None => parsed_cost(expr)?,
    };
    let size = 4usize.saturating_add(cost);
    if size > MAX_PROGRAM_SIZE {
        return Err(format!(
            "regular expression too complex for Envoy: its RE2 program would have about {size} instructions, more than Envoy's limit of {MAX_PROGRAM_SIZE}"
        ));
    }
    Ok(())
}

/// The estimate of [`cost`] for a regex parsed by regex-syntax, or why it
/// is invalid or refused by RE2.
fn parsed_cost(expr: &str) -> Result<usize, String> {
    // Parsed once; regex-syntax's whole parser would parse it again before
    // translating it.
    let invalid = |e: &dyn std::fmt::Display| format!("invalid regular expression: {}", last_line(&e.to_string()));
    let ast = ast::parse::Parser::new().parse(expr).map_err(|e| invalid(&e))?;
    regex_syntax::hir::translate::Translator::new().translate(expr, &ast).map_err(|e| invalid(&e))?;
    let case_insensitive = expr.contains("(?i") || expr.contains("(?-") && expr.contains('i');
    cost(&ast, expr, case_insensitive).map_err(|e| format!("regular expression {e}"))
}

/// [`cost`] of a plain regex, read without regex-syntax's parser: ASCII
/// literals, bracketed classes of ASCII letters, digits and `_` (single
/// characters and ranges, not negated), each optionally followed by one
/// `+`, `*` or `?`. Route paths such as `/r1/[a-z]+/[0-9]+` are written so,
/// and parsing them costs more than the rest of a route's validation.
/// `None` for anything else, which the parser reads. Every regex of this
/// form is valid; the `plain_regexes_cost_what_the_parser_says` property
/// holds the estimate to the parser's.
fn plain_cost(expr: &str) -> Option<usize> {
    let bytes = expr.as_bytes();
    let mut total = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let atom = match bytes[i] {
            b'[' => {
                let end = i + 1 + bytes[i + 1..].iter().position(|b| *b == b']')?;
                let items = &bytes[i + 1..end];
                if !plain_class(items) {
                    return None;
                }
                let piece = &expr[i..=end];
                i = end + 1;
                class_cost(piece)
            }
            b'\\' | b'.' | b'+' | b'*' | b'?' | b'(' | b')' | b'|' | b']' | b'{' | b'}' | b'^' | b'$' => return None,
            b' '..=b'~' => {
                i += 1;
                1
            }
            _ => return None,
        };
        // A repetition operator: RE2's one copy and its operator (two
        // instructions), as `cost` counts it for something never empty.
        let repeated = match bytes.get(i) {
            Some(b'+' | b'*' | b'?') => {
                i += 1;
                if matches!(bytes.get(i), Some(b'+' | b'*' | b'?' | b'{')) {
                    return None;
                }
                2
            }
            _ => 0,
        };
        total = total.saturating_add(atom + repeated);
    }
    Some(total)
}

/// True for the inside of a class of single characters and increasing
/// ranges of ASCII letters, digits and `_`, not empty.
fn plain_class(items: &[u8]) -> bool {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let mut i = 0;
    while i < items.len() {
        if !plain(&items[i]) {
            return false;
        }
        if items.get(i + 1) == Some(&b'-') {
            match items.get(i + 2) {
                Some(end) if plain(end) && *end >= items[i] => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    !items.is_empty()
}

/// The last line of regex-syntax's message, which says what is wrong (the
/// lines before it draw the regex and point at the place).
fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().trim_start_matches("error: ").to_string()
}

/// Instructions for `node` (an upper estimate), or why RE2 refuses it.
fn cost(node: &Ast, expr: &str, case_insensitive: bool) -> Result<usize, String> {
    Ok(match node {
        Ast::Empty(_) | Ast::Flags(_) => 0,
        Ast::Literal(l) => l.c.len_utf8() * if case_insensitive { 2 } else { 1 },
        Ast::Assertion(_) => 1,
        Ast::Dot(span) => class_cost(&expr[span.start.offset..span.end.offset]),
        Ast::ClassUnicode(c) => class_cost(&expr[c.span.start.offset..c.span.end.offset]),
        Ast::ClassPerl(c) => class_cost(match (&c.kind, c.negated) {
            // RE2's Perl classes are ASCII (not Unicode, as regex-syntax's are).
            (ast::ClassPerlKind::Digit, false) => "[0-9]",
            (ast::ClassPerlKind::Digit, true) => "[^0-9]",
            (ast::ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
            (ast::ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
            (ast::ClassPerlKind::Space, false) => "[\\t\\n\\x0C\\r ]",
            (ast::ClassPerlKind::Space, true) => "[^\\t\\n\\x0C\\r ]",
        }),
        Ast::ClassBracketed(c) => {
            let piece = &expr[c.span.start.offset..c.span.end.offset];
            class_cost(&piece.replace("\\d", "0-9").replace("\\w", "0-9A-Za-z_").replace("\\s", "\\t\\n\\x0C\\r "))
        }
        Ast::Group(g) => {
            let inner = cost(&g.ast, expr, case_insensitive)?;
            match g.kind {
                ast::GroupKind::NonCapturing(_) => inner,
                _ => inner.saturating_add(2),
            }
        }
        Ast::Alternation(a) => sum(&a.asts, expr, case_insensitive)?.saturating_add(a.asts.len()),
        Ast::Concat(c) => sum(&c.asts, expr, case_insensitive)?,
        Ast::Repetition(r) => {
            let mut sub = cost(&r.ast, expr, case_insensitive)?;
            let (min, max) = match &r.op.kind {
                RepetitionKind::ZeroOrOne => (0, Some(1)),
                RepetitionKind::ZeroOrMore => (0, None),
                RepetitionKind::OneOrMore => (1, None),
                RepetitionKind::Range(RepetitionRange::Exactly(n)) => (*n, Some(*n)),
                RepetitionKind::Range(RepetitionRange::AtLeast(n)) => (*n, None),
                RepetitionKind::Range(RepetitionRange::Bounded(m, n)) => (*m, Some(*n)),
            };
            if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
                return Err(format!("repetition count over {MAX_REPEAT}, RE2's limit"));
            }
            // RE2 guards each copy of something that can match the empty
            // string: RE2 counted 110 for `(${0,}^){13}é`.
            if nullable(&r.ast) {
                sub = sub.saturating_add(3);
            }
            // RE2 writes x{m,n} as m copies of x, then n-m optional ones
            // (or a loop over the last copy when unbounded), each optional
            // part with an operator.
            let operators = match max {
                Some(max) => (max - min) as usize,
                None => 1,
            };
            let copies = max.unwrap_or(min).max(1) as usize;
            // Two instructions an operator: RE2 counted 120 for
            // `(?:$+){39}${10}`, where one each would estimate 92.
            sub.saturating_mul(copies).saturating_add(operators.saturating_mul(2))
        }
    })
}

fn sum(nodes: &[Ast], expr: &str, case_insensitive: bool) -> Result<usize, String> {
    nodes.iter().try_fold(0usize, |total, n| Ok(total.saturating_add(cost(n, expr, case_insensitive)?)))
}

/// True when `node` can match the empty string.
fn nullable(node: &Ast) -> bool {
    match node {
        Ast::Empty(_) | Ast::Flags(_) | Ast::Assertion(_) => true,
        Ast::Literal(_) | Ast::Dot(_) | Ast::ClassUnicode(_) | Ast::ClassPerl(_) | Ast::ClassBracketed(_) => false,
        Ast::Repetition(r) => match &r.op.kind {
            RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore => true,
            RepetitionKind::OneOrMore => nullable(&r.ast),
            RepetitionKind::Range(RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n)) => {
                *n == 0 || nullable(&r.ast)
            }
            RepetitionKind::Range(RepetitionRange::Bounded(m, _)) => *m == 0 || nullable(&r.ast),
        },
        Ast::Group(g) => nullable(&g.ast),
        Ast::Concat(c) => c.asts.iter().all(nullable),
        Ast::Alternation(a) => a.asts.iter().any(nullable),
    }
}

/// Instructions for a class written as `piece`: one per byte range of each
/// UTF-8 sequence of its ranges.
fn class_cost(piece: &str) -> usize {
    // The same few classes (`[a-z]`, `[0-9]`, `.`) come back in route after
    // route, and parsing one costs more than the rest of the check.
    thread_local! {
        static KNOWN: std::cell::RefCell<std::collections::HashMap<String, usize>> = Default::default();
    }
    if let Some(cost) = KNOWN.with(|known| known.borrow().get(piece).copied()) {
        return cost;
    }
    let cost = class_cost_uncached(piece);
    KNOWN.with(|known| {
        let mut known = known.borrow_mut();
        // Bounded: distinct classes could otherwise grow it without end.
        if known.len() >= 1024 {
            known.clear();
        }
        known.insert(piece.to_string(), cost);
    });
    cost
}

fn class_cost_uncached(piece: &str) -> usize {
    use regex_syntax::hir::{Class, HirKind};
    let Ok(hir) = regex_syntax::Parser::new().parse(piece) else { return 1 };
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .iter()
            .map(|r| regex_syntax::utf8::Utf8Sequences::new(r.start(), r.end()).map(|s| s.len()).sum::<usize>())
            .sum(),
        HirKind::Class(Class::Bytes(c)) => c.iter().count(),
        // A class of one character becomes a literal.
        HirKind::Literal(l) => l.0.len(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_syntax_is_reported_as_regex_syntax_reports_it() {
        // Parse errors, and translation errors (an unknown class, an empty
        // range), each with regex-syntax's own last line.
        for expr in ["[", "a{2,1}", "\\p{Nope}", "(?P<n>a)(?P<n>b)", "[z-a]", "(?i)\\p{Greek"] {
            let reference = regex_syntax::Parser::new().parse(expr).unwrap_err().to_string();
            let last = reference.lines().last().unwrap().trim().trim_start_matches("error: ");
            assert_eq!(check(expr), Err(format!("invalid regular expression: {last}")), "{expr}");
        }
        assert_eq!(check("/r0/[a-z]+/[0-9]+"), Ok(()));
    }

    #[test]
    fn estimates_agree_with_re2_where_known() {
        // RE2's own program size for this is 132 (Envoy's error message).
        assert!(check("[0-9a-f]{64}").unwrap_err().contains("about 132 instructions"));
        assert!(check("[0-9a-f]{32}").is_ok());
        assert!(check("\\w+-\\d{1,4}\\s[\\w.]+").is_ok(), "Perl classes are ASCII in RE2");
        assert!(check("/api/v[0-9]+/users/[^/]+").is_ok());
        assert!(check("/a{1001}").unwrap_err().contains("over 1000"));
        // Found by the differential test: RE2 counts 120 and 110.
        assert!(check("(?:$+){39}${10}").is_err());
        assert!(check("(${0,}^){13}é").is_err());
        assert!(check("[0-9a-f]{40}").is_ok(), "RE2 counts 84");
        let many: Vec<String> = (0..20_000).map(|i| format!("x{i}")).collect();
        assert!(check(&many.join("|")).unwrap_err().contains("too complex"));
        // Long plain ones too, without the parser.
        assert_eq!(
            plain_cost("/r1/[a-z]+/[0-9]+"),
            Some(4 + 3 + 1 + 3),
            "four literals, a class and its operator, one more, and another"
        );
        assert!(check(&"/a".repeat(60)).unwrap_err().contains("about 124 instructions"));
    }

    proptest::proptest! {
        /// Every regex the plain reader reads is valid, and costs what the
        /// parser's estimate says; it gives up on the rest.
        #[test]
        fn plain_regexes_cost_what_the_parser_says(expr in "[-a-c09_/ #\\\\\\[\\]^+*?{}()|.$,é]{0,14}") {
            if let Some(plain) = plain_cost(&expr) {
                proptest::prop_assert_eq!(Ok(plain), parsed_cost(&expr), "{:?}", expr);
            }
        }

        /// The same for regexes built of plain pieces, which random text
        /// seldom forms.
        #[test]
        fn plain_pieces_cost_what_the_parser_says(
            pieces in proptest::collection::vec(
                ("(/|-|[a-z]{1,3}|\\[[a-c0-9_]{1,3}\\]|\\[[a-c]-[a-c]\\]|\\[[0-9]-[0-9][A-Z]\\])", "(|\\+|\\*|\\?)"),
                0..8,
            )
        ) {
            let expr: String = pieces.iter().map(|(a, q)| format!("{a}{q}")).collect();
            let parsed = parsed_cost(&expr);
            match plain_cost(&expr) {
                Some(plain) => proptest::prop_assert_eq!(Ok(plain), parsed, "{:?}", expr),
                // Only a decreasing range is left to the parser, which refuses it.
                None => proptest::prop_assert!(parsed.is_err(), "{:?} not read plainly", expr),
            }
        }
    }
}
