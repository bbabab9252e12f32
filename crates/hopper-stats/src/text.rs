//! Shortening text that came from outside (a form field, a worker's id, a response body)
//! before it goes into a log line, a reply or an error key, so that no input can make them
//! huge or unreadable.

use std::borrow::Cow;

/// The first `max_chars` characters of `text`, followed by `…` when there were more.
pub fn clip(text: &str, max_chars: usize) -> Cow<'_, str> {
    clip_with(text, max_chars, "…")
}

/// [`clip`] with another marker, e.g. `...` where the text must stay ASCII (failure texts
/// become error keys and CSV cells).
pub fn clip_with<'a>(text: &'a str, max_chars: usize, marker: &str) -> Cow<'a, str> {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}{marker}", &text[..cut]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_characters_not_bytes() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ééééé", 2), "éé…");
        assert!(matches!(clip("same", 4), Cow::Borrowed(_)));
        assert_eq!(clip_with("abcdef", 3, "..."), "abc...");
    }
}
