//! Redis's glob patterns (`KEYS`, `SCAN ... MATCH`, `CONFIG GET`): `*` any run of
//! bytes, `?` one byte, `[abc]`, `[^abc]` and `[a-z]` one byte of a class, `\x` the
//! byte `x`. Matching is on bytes, case-sensitive, and linear in the text for each
//! `*` backtrack (no exponential blow-up on patterns like `*a*a*a*b`).

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the latest `*`: the pattern after it, and the text
    // position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            let (matched, length) = one(pattern, p, text[t]);
            if matched {
                p += length;
                t += 1;
                continue;
            }
        }
        match star {
            Some((after, swallowed)) => {
                p = after;
                t = swallowed + 1;
                star = Some((after, swallowed + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// Whether the token at `pattern[p]` (not `*`) matches `byte`, and its length.
fn one(pattern: &[u8], p: usize, byte: u8) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte, 2),
        b'[' => class(pattern, p, byte),
        literal => (literal == byte, 1),
    }
}

/// A `[...]` class at `pattern[start]`: whether `byte` is in it, and its length. An
/// unclosed class runs to the pattern's end, as in Redis.
fn class(pattern: &[u8], start: usize, byte: u8) -> (bool, usize) {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut found = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            found |= pattern[i + 1] == byte;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (low, high) = (pattern[i].min(pattern[i + 2]), pattern[i].max(pattern[i + 2]));
            found |= (low..=high).contains(&byte);
            i += 3;
        } else {
            found |= pattern[i] == byte;
            i += 1;
        }
    }
    let end = if i < pattern.len() { i + 1 } else { i };
    (found != negate, end - start)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_as_in_redis() {
        let yes = [
            ("*", ""),
            ("*", "anything"),
            ("h?llo", "hello"),
            ("h*llo", "hllo"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("user:*:name", "user:42:name"),
            ("\\*", "*"),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab"),
        ];
        for (pattern, text) in yes {
            assert!(matches(pattern.as_bytes(), text.as_bytes()), "{pattern} ~ {text}");
        }
        let no = [
            ("h?llo", "hllo"),
            ("h[ae]llo", "hillo"),
            ("h[^e]llo", "hello"),
            ("\\*", "a"),
            ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"),
            ("abc", "ab"),
            ("ab", "abc"),
        ];
        for (pattern, text) in no {
            assert!(!matches(pattern.as_bytes(), text.as_bytes()), "{pattern} !~ {text}");
        }
    }
}
