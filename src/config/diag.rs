//! Diagnostics: every problem found in a configuration file, as
//! `path:line: message`, collected rather than stopping at the first.

use std::fmt;

/// How bad a diagnostic is. Only errors make a load fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file cannot be used as written.
    Error,
    /// Accepted, but probably not what the operator wants.
    Warning,
    /// Accepted; says what harust does instead of what heartbeat did.
    Notice,
}

/// One message about one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the caller named it (e.g. `/etc/harust/ha.cf`).
    pub path: String,
    /// 1-based line. `None` for problems with the file as a whole, such as
    /// a missing file or a missing `node` line.
    pub line: Option<usize>,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `path:line: message` for errors, `path:line: warning: message` and
    /// `path:line: notice: message` for the others. Without a line:
    /// `path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.path, line)?,
            None => write!(f, "{}: ", self.path)?,
        }
        match self.severity {
            Severity::Error => {}
            Severity::Warning => f.write_str("warning: ")?,
            Severity::Notice => f.write_str("notice: ")?,
        }
        f.write_str(&self.message)
    }
}

/// Every diagnostic from a failed parse or load: the errors, and the
/// warnings and notices found alongside them. `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Turns a list into the parsers' result, sorted by line: `Ok` with the warnings and
/// notices when there is no error, otherwise `Err` with everything.
pub(crate) fn finish<T>(
    value: Option<T>,
    mut diags: Vec<Diagnostic>,
) -> Result<(T, Vec<Diagnostic>), Diagnostics> {
    // In line order; whole-file diagnostics last. The sort is stable.
    diags.sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    match value {
        Some(v) if !diags.iter().any(Diagnostic::is_error) => Ok((v, diags)),
        _ => Err(Diagnostics(diags)),
    }
}

/// Collects diagnostics for one file.
#[derive(Debug)]
pub(crate) struct Sink {
    pub path: String,
    pub list: Vec<Diagnostic>,
}

impl Sink {
    pub fn new(path: &str) -> Self {
        Sink {
            path: path.to_string(),
            list: Vec::new(),
        }
    }

    fn push(&mut self, line: Option<usize>, severity: Severity, message: String) {
        self.list.push(Diagnostic {
            path: self.path.clone(),
            line,
            severity,
            message,
        });
    }

    pub fn error(&mut self, line: usize, message: impl Into<String>) {
        self.push(Some(line), Severity::Error, message.into());
    }

    pub fn error_at(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.push(line, Severity::Error, message.into());
    }

    pub fn warning(&mut self, line: usize, message: impl Into<String>) {
        self.push(Some(line), Severity::Warning, message.into());
    }

    pub fn warning_at(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.push(line, Severity::Warning, message.into());
    }

    pub fn notice(&mut self, line: usize, message: impl Into<String>) {
        self.push(Some(line), Severity::Notice, message.into());
    }

    pub fn notice_at(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.push(line, Severity::Notice, message.into());
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo (Damerau–Levenshtein, so transpositions count once). Ties go to
/// the earlier candidate.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // Long inputs cannot be near any candidate, and the distance is
    // quadratic: a fuzzer's megabyte token must stay cheap.
    if word.is_empty() || word.len() > 64 {
        return None;
    }
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let len = cand.chars().count();
        let limit = match len {
            0..=3 => 1,
            4..=6 => 2,
            _ => 3,
        };
        // The distance is at least the difference in length: skip the
        // (allocating) computation when that alone is too far.
        if lower.chars().count().abs_diff(len) > limit {
            continue;
        }
        let d = strsim::damerau_levenshtein(&lower, &cand.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// `(did you mean "x"?)`, with a leading space, or nothing.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match suggest(word, candidates) {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None => String::new(),
    }
}

/// A value quoted for a message: control characters escaped, and cut
/// short if huge, so a message stays one readable line.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i >= 80 {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_debugfile_for_ebugfile() {
        assert_eq!(
            suggest("ebugfile", ["logfile", "debugfile", "debug"]),
            Some("debugfile")
        );
    }

    #[test]
    fn no_suggestion_for_unrelated_word() {
        assert_eq!(suggest("frobnicate", ["keepalive", "deadtime"]), None);
    }

    #[test]
    fn display_formats() {
        let d = Diagnostic {
            path: "ha.cf".into(),
            line: Some(3),
            severity: Severity::Warning,
            message: "m".into(),
        };
        assert_eq!(d.to_string(), "ha.cf:3: warning: m");
        let e = Diagnostic {
            line: None,
            severity: Severity::Error,
            ..d
        };
        assert_eq!(e.to_string(), "ha.cf: m");
    }

    #[test]
    fn quote_escapes_controls() {
        assert_eq!(quote("a\"b\u{1}"), "\"a\\\"b\\u{1}\"");
    }
}
