//! The pre-tokenizers of byte-level BPE vocabularies: each splits a text into the
//! words that BPE then merges within, exactly as the regular expressions their
//! `tokenizer.json` files declare (matched by Oniguruma in the `tokenizers`
//! package) split it. Hand-written matchers, one per pattern, with the regex's
//! ordered alternation and backtracking spelled out, so no regex engine (and no
//! `std`) is needed.
//!
//! Character classes are Unicode's: `\p{L}` the general categories L*, `\p{N}`
//! N*, `\s` the `White_Space` property.

use alloc::vec::Vec;
use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// Which pattern splits the text (the model file stores its number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's `ByteLevel` pattern:
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2 = 0,
    /// Llama 3's (GGUF `llama-bpe`): `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
    /// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    Llama3 = 1,
    /// Qwen2's (GGUF `qwen2`): Llama 3's with single digits (`\p{N}`).
    Qwen2 = 2,
    /// SmolLM's (GGUF `smollm`): every digit on its own (`Digits(individual_digits)`),
    /// then GPT-2's pattern on what lies between.
    SmolLm = 3,
}

impl PreTokenizer {
    /// The pre-tokenizer of a stored number.
    pub fn from_u32(v: u32) -> Option<PreTokenizer> {
        Some(match v {
            0 => PreTokenizer::Gpt2,
            1 => PreTokenizer::Llama3,
            2 => PreTokenizer::Qwen2,
            3 => PreTokenizer::SmolLm,
            _ => return None,
        })
    }

    /// Split `text` into words, as byte ranges covering it in order.
    pub fn split(self, text: &str) -> Vec<(usize, usize)> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut words = Vec::new();
        let end_byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
        let mut push = |from: usize, to: usize| {
            if to > from {
                words.push((end_byte(from), end_byte(to)));
            }
        };
        match self {
            PreTokenizer::Gpt2 => split_with(&chars, 0, chars.len(), gpt2_match, &mut push),
            PreTokenizer::Llama3 => split_with(
                &chars,
                0,
                chars.len(),
                |c, i, e| llama3_match(c, i, e, 3),
                &mut push,
            ),
            PreTokenizer::Qwen2 => split_with(
                &chars,
                0,
                chars.len(),
                |c, i, e| llama3_match(c, i, e, 1),
                &mut push,
            ),
            PreTokenizer::SmolLm => {
                let mut start = 0;
                for i in 0..chars.len() {
                    if is_number(chars[i].1) {
                        split_with(&chars, start, i, gpt2_match, &mut push);
                        push(i, i + 1);
                        start = i + 1;
                    }
                }
                split_with(&chars, start, chars.len(), gpt2_match, &mut push);
            }
        }
        words
    }
}

/// Split `chars[from..to]` with a matcher (`matcher(chars, i, to)` is the match length
/// at `i`, if any), as `Split(pattern, Isolated)` does: every match is a word, and so
/// is every gap between matches.
fn split_with(
    chars: &[(usize, char)],
    from: usize,
    to: usize,
    matcher: impl Fn(&[(usize, char)], usize, usize) -> Option<usize>,
    push: &mut impl FnMut(usize, usize),
) {
    let mut gap = from;
    let mut i = from;
    while i < to {
        match matcher(chars, i, to) {
            Some(len) if len > 0 => {
                push(gap, i);
                push(i, i + len);
                i += len;
                gap = i;
            }
            _ => i += 1,
        }
    }
    push(gap, to);
}

fn is_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
    )
}

fn is_number(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::DecimalNumber | Gc::LetterNumber | Gc::OtherNumber
    )
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Neither whitespace, letter nor number: `[^\s\p{L}\p{N}]`.
fn is_other(c: char) -> bool {
    !is_space(c) && !is_letter(c) && !is_number(c)
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// The length of the run of `class` characters starting at `i` (before `end`).
fn run(chars: &[(usize, char)], i: usize, end: usize, class: impl Fn(char) -> bool) -> usize {
    chars[i..end].iter().take_while(|&&(_, c)| class(c)).count()
}

/// `'s|'t|'re|'ve|'m|'ll|'d`, case-insensitive when asked.
fn contraction(chars: &[(usize, char)], i: usize, end: usize, fold: bool) -> Option<usize> {
    if chars[i].1 != '\'' {
        return None;
    }
    let at = |k: usize| -> Option<char> {
        let c = chars.get(i + k).filter(|_| i + k < end)?.1;
        Some(if fold { c.to_ascii_lowercase() } else { c })
    };
    match (at(1)?, at(2)) {
        ('s' | 't' | 'm' | 'd', _) => Some(2),
        ('r', Some('e')) | ('v', Some('e')) | ('l', Some('l')) => Some(3),
        _ => None,
    }
}

/// `\s+(?!\S)|\s+` at `i`, whose first character is whitespace: the whole run if
/// it reaches the end or is one character, else all of it but its last character
/// (which then starts the next word).
fn trailing_space(chars: &[(usize, char)], i: usize, end: usize) -> Option<usize> {
    let n = run(chars, i, end, is_space);
    match n {
        0 => None,
        _ if i + n == end || n == 1 => Some(n),
        _ => Some(n - 1),
    }
}

fn gpt2_match(chars: &[(usize, char)], i: usize, end: usize) -> Option<usize> {
    if let Some(n) = contraction(chars, i, end, false) {
        return Some(n);
    }
    let lead = usize::from(chars[i].1 == ' ' && i + 1 < end);
    for class in [is_letter as fn(char) -> bool, is_number, is_other] {
        let n = run(chars, i + lead, end, class);
        if n > 0 {
            return Some(lead + n);
        }
    }
    trailing_space(chars, i, end)
}

/// Llama 3's pattern, with numbers in runs of at most `digits`.
fn llama3_match(chars: &[(usize, char)], i: usize, end: usize, digits: usize) -> Option<usize> {
    if let Some(n) = contraction(chars, i, end, true) {
        return Some(n);
    }
    let c = chars[i].1;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    let lead = usize::from(!is_newline(c) && !is_letter(c) && !is_number(c) && i + 1 < end);
    let letters = run(chars, i + lead, end, is_letter);
    if letters > 0 {
        return Some(lead + letters);
    }
    // \p{N}{1,digits}
    let numbers = run(chars, i, end, is_number).min(digits);
    if numbers > 0 {
        return Some(numbers);
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let lead = usize::from(c == ' ' && i + 1 < end);
    let others = run(chars, i + lead, end, is_other);
    if others > 0 {
        let at = i + lead + others;
        return Some(lead + others + run(chars, at, end, is_newline));
    }
    // \s*[\r\n]+: the whitespace run up to and including its last newline.
    let spaces = run(chars, i, end, is_space);
    if let Some(last) = chars[i..i + spaces]
        .iter()
        .rposition(|&(_, c)| is_newline(c))
    {
        return Some(last + 1);
    }
    trailing_space(chars, i, end)
}
