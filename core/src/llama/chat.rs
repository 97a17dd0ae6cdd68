//! Chat templates: a request's prompt as the one user message of a conversation,
//! followed by the prompt for the assistant's reply, in the model's format.
//!
//! Models publish their template as a Jinja program; the core renders the few
//! formats those programs produce for one user message (`oracle-quant` recognises
//! the format when it imports the vocabulary) rather than running Jinja:
//! - [`ChatTemplate::Llama3`]: `<|start_header_id|>user<|end_header_id|>\n\n` +
//!   the prompt with surrounding whitespace trimmed + `<|eot_id|>` +
//!   `<|start_header_id|>assistant<|end_header_id|>\n\n` (the BOS the template
//!   starts with is the token every prompt starts with);
//! - [`ChatTemplate::ChatMl`] (Qwen2, SmolLM): a system message when the template
//!   has a default one (`<|im_start|>system\n` + it + `<|im_end|>\n`), then
//!   `<|im_start|>user\n` + the prompt + `<|im_end|>\n<|im_start|>assistant\n`.

use alloc::vec::Vec;

/// A chat format (the model file stores its number and default system prompt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate<'a> {
    /// The vocabulary has no chat format.
    None,
    /// Llama 3's header format.
    Llama3,
    /// ChatML, with the default system prompt (empty: none).
    ChatMl {
        /// The system message the template adds when the conversation has none.
        default_system: &'a [u8],
    },
}

impl<'a> ChatTemplate<'a> {
    /// The template of a stored number and system prompt (`None` for an unknown
    /// number, or a system prompt given to a format that has none).
    pub fn from_parts(kind: u32, system: &'a [u8]) -> Option<ChatTemplate<'a>> {
        match (kind, system.is_empty()) {
            (0, true) => Some(ChatTemplate::None),
            (1, true) => Some(ChatTemplate::Llama3),
            (2, _) => Some(ChatTemplate::ChatMl {
                default_system: system,
            }),
            _ => None,
        }
    }

    /// The stored number.
    pub fn kind(&self) -> u32 {
        match self {
            ChatTemplate::None => 0,
            ChatTemplate::Llama3 => 1,
            ChatTemplate::ChatMl { .. } => 2,
        }
    }

    /// The conversation text for one user message `prompt` (`None` when the
    /// vocabulary has no chat format).
    pub fn render(&self, prompt: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(prompt.len() + 96);
        match self {
            ChatTemplate::None => return None,
            ChatTemplate::Llama3 => {
                out.extend_from_slice(b"<|start_header_id|>user<|end_header_id|>\n\n");
                out.extend_from_slice(trim(prompt));
                out.extend_from_slice(
                    b"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                );
            }
            ChatTemplate::ChatMl { default_system } => {
                if !default_system.is_empty() {
                    out.extend_from_slice(b"<|im_start|>system\n");
                    out.extend_from_slice(default_system);
                    out.extend_from_slice(b"<|im_end|>\n");
                }
                out.extend_from_slice(b"<|im_start|>user\n");
                out.extend_from_slice(prompt);
                out.extend_from_slice(b"<|im_end|>\n<|im_start|>assistant\n");
            }
        }
        Some(out)
    }
}

/// Jinja's `trim` (Python's `str.strip()`) on UTF-8 text; bytes that are not
/// UTF-8 are kept as they are (only whole whitespace characters are removed).
fn trim(text: &[u8]) -> &[u8] {
    let is_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let mut start = 0;
    while let Some(c) = first_char(&text[start..]) {
        if !is_space(c) {
            break;
        }
        start += c.len_utf8();
    }
    let mut end = text.len();
    while let Some(c) = last_char(&text[start..end]) {
        if !is_space(c) {
            break;
        }
        end -= c.len_utf8();
    }
    &text[start..end]
}

fn first_char(s: &[u8]) -> Option<char> {
    let n = s.len().min(4);
    (1..=n).find_map(|len| core::str::from_utf8(&s[..len]).ok()?.chars().next())
}

fn last_char(s: &[u8]) -> Option<char> {
    let n = s.len().min(4);
    (1..=n).find_map(|len| {
        core::str::from_utf8(&s[s.len() - len..])
            .ok()?
            .chars()
            .next()
    })
}
