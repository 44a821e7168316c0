//! IAM wildcards (`*` any run, `?` one character) without backtracking.
//!
//! Patterns are customer input: a recursive matcher is exponential in the
//! number of `*`. Here a pattern is split at its stars into segments that are
//! placed greedily, leftmost first (placing a segment as early as possible
//! never loses a match), so a match costs O(pattern × text) at worst and
//! usually O(text). Whether two patterns share a string is a breadth-first
//! walk of their product automaton: O(len(a) × len(b)).

/// How characters compare: actions ignore case, ARNs and values do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Sensitive,
    Insensitive,
}

impl Case {
    fn eq(self, a: u8, b: u8) -> bool {
        match self {
            Case::Sensitive => a == b,
            Case::Insensitive => a.eq_ignore_ascii_case(&b),
        }
    }
}

/// Whether `pattern` matches the whole of `text` (`text` is literal).
pub fn matches(pattern: &str, text: &str, case: Case) -> bool {
    match_with(pattern.as_bytes(), text.as_bytes(), |p, t| p == b'?' || case.eq(p, t))
}

/// Whether every string `inner` can name is also named by `outer`: `outer`
/// matches `inner` read as text, where only a `*` of `outer` may stand for
/// a `*` of `inner`, and a `?` of `inner` only for a `?` or `*` of `outer`.
/// Sound (never claims cover that is not there); exact for the patterns IAM
/// policies hold in practice.
pub fn covers(outer: &str, inner: &str, case: Case) -> bool {
    match_with(outer.as_bytes(), inner.as_bytes(), |p, t| match (p, t) {
        (_, b'*') => false,
        (b'?', _) => true,
        (_, b'?') => false,
        _ => case.eq(p, t),
    })
}

/// Greedy segment matching; `eq(pattern byte, text byte)` never sees a `*`
/// of the pattern, but may see one of the text (for `covers`).
fn match_with(p: &[u8], t: &[u8], eq: impl Fn(u8, u8) -> bool + Copy) -> bool {
    let seg_at = |seg: &[u8], at: usize| -> bool {
        at + seg.len() <= t.len() && seg.iter().zip(&t[at..]).all(|(&a, &b)| eq(a, b))
    };
    let mut segs = p.split(|&c| c == b'*');
    // No star: the whole text, exactly.
    let first = segs.next().unwrap_or(&[]);
    if !p.contains(&b'*') {
        return first.len() == t.len() && seg_at(first, 0);
    }
    if !seg_at(first, 0) {
        return false;
    }
    let mut pos = first.len();
    let rest: Vec<&[u8]> = segs.collect();
    let (last, middle) = rest.split_last().expect("a pattern with a star has a segment after it");
    for seg in middle {
        if seg.is_empty() {
            continue;
        }
        let mut at = pos;
        loop {
            if at + seg.len() > t.len() {
                return false;
            }
            if seg_at(seg, at) {
                break;
            }
            at += 1;
        }
        pos = at + seg.len();
    }
    // The last segment sits at the very end, after everything placed so far.
    t.len() >= pos + last.len() && seg_at(last, t.len() - last.len())
}

/// Whether some string matches both patterns.
pub fn overlaps(a: &str, b: &str, case: Case) -> bool {
    product_walk(a.as_bytes(), b.as_bytes(), case).is_some()
}

/// A string both patterns match, if there is one: what a caller could send
/// to satisfy two `StringLike` conditions on one key at once.
pub fn common_witness(a: &str, b: &str, case: Case) -> Option<String> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (parent, m) = product_walk(a, b, case)?;
    // Walk back from the accepting state; each step that consumed a
    // character names it (a literal if either side has one, else `x`).
    let mut out = Vec::new();
    let mut at = a.len() * m + b.len();
    while at != 0 {
        let (prev, consumed) = parent[at].expect("every reached state but the start has a parent");
        if consumed {
            let (i, j) = (prev / m, prev % m);
            let pick = [a.get(i), b.get(j)]
                .into_iter()
                .flatten()
                .copied()
                .find(|c| *c != b'*' && *c != b'?');
            out.push(pick.unwrap_or(b'x'));
        }
        at = prev;
    }
    out.reverse();
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Search of the product automaton; on success, each state's parent (and
/// whether the step consumed a character) and the row width.
#[allow(clippy::type_complexity)]
fn product_walk(a: &[u8], b: &[u8], case: Case) -> Option<(Vec<Option<(usize, bool)>>, usize)> {
    let (n, m) = (a.len() + 1, b.len() + 1);
    // States (i, j): `a[..i]` and `b[..j]` have consumed a common prefix.
    let mut parent: Vec<Option<(usize, bool)>> = vec![None; n * m];
    let mut seen = vec![false; n * m];
    let mut stack = vec![(0usize, 0usize)];
    seen[0] = true;
    while let Some((i, j)) = stack.pop() {
        if i == a.len() && j == b.len() {
            return Some((parent, m));
        }
        let mut push = |i2: usize, j2: usize, consumed: bool| {
            if !seen[i2 * m + j2] {
                seen[i2 * m + j2] = true;
                parent[i2 * m + j2] = Some((i * m + j, consumed));
                stack.push((i2, j2));
            }
        };
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // A star may also match nothing.
        if ca == Some(b'*') {
            push(i + 1, j, false);
        }
        if cb == Some(b'*') {
            push(i, j + 1, false);
        }
        // One common character: a star stays where it is.
        let (Some(x), Some(y)) = (ca, cb) else { continue };
        let compatible = x == b'*' || y == b'*' || x == b'?' || y == b'?' || case.eq(x, y);
        if compatible {
            let i2 = if x == b'*' { i } else { i + 1 };
            let j2 = if y == b'*' { j } else { j + 1 };
            if (i2, j2) != (i, j) {
                push(i2, j2, true);
            }
        }
    }
    None
}

/// A string that `pattern` matches (stars empty, `?` as `x`): a value an
/// attacker could send to satisfy a `StringLike` condition.
pub fn witness(pattern: &str) -> String {
    pattern
        .chars()
        .filter(|&c| c != '*')
        .map(|c| if c == '?' { 'x' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious exponential matcher, for short inputs only.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    #[test]
    fn matches_like_iam() {
        let i = Case::Insensitive;
        assert!(matches("sts:*", "sts:AssumeRole", i));
        assert!(matches("STS:assumerole", "sts:AssumeRole", i));
        assert!(!matches("STS:assumerole", "sts:AssumeRole", Case::Sensitive));
        assert!(matches("*", "", i));
        assert!(matches("ec2:Describe?nstances", "ec2:DescribeInstances", i));
        assert!(!matches("sts:AssumeRoleWith*", "sts:AssumeRole", i));
        assert!(matches("a*b*c", "abc", i));
        assert!(matches("a*b*c", "aXbYbZc", i));
        assert!(!matches("a*b*c", "aXbYbZ", i));
        assert!(matches("*ab", "aab", i));
        assert!(!matches("ab*ba", "aba", i));
    }

    #[test]
    fn the_hostile_pattern_answers_at_once() {
        let p = format!("ec2:{}Z", "*".repeat(40));
        let t = format!("ec2:{}", "a".repeat(4000));
        assert!(!matches(&p, &t, Case::Insensitive));
        assert!(!overlaps(&p, "ec2:DescribeInstances", Case::Insensitive));
        assert!(overlaps(&p, "ec2:*", Case::Insensitive));
    }

    #[test]
    fn covers_and_overlaps() {
        let i = Case::Insensitive;
        assert!(covers("ec2:*", "ec2:Describe*", i));
        assert!(covers("ec2:Describe*", "ec2:Describe*", i));
        assert!(!covers("ec2:Describe?", "ec2:Describe*", i));
        assert!(!covers("ec2:D*s", "ec2:Describe*", i));
        assert!(!covers("ec2:DescribeInstances", "ec2:Describe*", i));
        assert!(overlaps("ec2:*Instances", "ec2:Describe*", i));
        assert!(!overlaps("ec2:*Volumes", "s3:*", i));
        assert!(!overlaps("ec2:Run*", "ec2:Describe*", i));
        assert!(overlaps("a?c", "*b*", i));
        assert!(!overlaps("abc", "abd", i));
        assert_eq!(witness("ext-*?"), "ext-x");
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(p in "[ab*?]{0,8}", t in "[ab]{0,8}") {
            prop_assert_eq!(matches(&p, &t, Case::Sensitive), reference(p.as_bytes(), t.as_bytes()));
        }

        #[test]
        fn overlap_is_found_by_some_witness(a in "[ab*?]{0,6}", b in "[ab*?]{0,6}", t in "[ab]{0,7}") {
            // A string both match proves overlap; overlap is symmetric.
            if matches(&a, &t, Case::Sensitive) && matches(&b, &t, Case::Sensitive) {
                prop_assert!(overlaps(&a, &b, Case::Sensitive));
            }
            prop_assert_eq!(overlaps(&a, &b, Case::Sensitive), overlaps(&b, &a, Case::Sensitive));
        }

        #[test]
        fn a_common_witness_matches_both(a in "[ab*?]{0,6}", b in "[ab*?]{0,6}") {
            match common_witness(&a, &b, Case::Sensitive) {
                Some(w) => {
                    prop_assert!(matches(&a, &w, Case::Sensitive), "{} {}", a, w);
                    prop_assert!(matches(&b, &w, Case::Sensitive), "{} {}", b, w);
                }
                None => prop_assert!(!overlaps(&a, &b, Case::Sensitive)),
            }
        }

        #[test]
        fn cover_is_sound(a in "[ab*?]{0,6}", b in "[ab*?]{0,6}", t in "[ab]{0,7}") {
            if covers(&a, &b, Case::Sensitive) && matches(&b, &t, Case::Sensitive) {
                prop_assert!(matches(&a, &t, Case::Sensitive));
            }
        }
    }
}
