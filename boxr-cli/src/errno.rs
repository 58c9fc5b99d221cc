//! Wording OS errors the way boxr's messages use them: lowercase, without "(os error N)".

use std::io;

/// "no such file or directory" for ENOENT.
pub fn describe(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => describe_errno(errno),
        None => err.to_string(),
    }
}

/// The C library's text for `errno`, lowercased, e.g. "operation not permitted".
pub fn describe_errno(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    let text = text.strip_suffix(&format!(" (os error {errno})")).unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("error {errno}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_is_lowercase_without_code() {
        assert_eq!(describe_errno(libc::ENOENT), "no such file or directory");
        assert_eq!(describe(&io::Error::from_raw_os_error(libc::EPERM)), "operation not permitted");
    }
}
