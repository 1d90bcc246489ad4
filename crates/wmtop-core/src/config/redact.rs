//! Masking credentials in URLs before they are shown: `http://user:pass@host` becomes
//! `http://user:***@host` in every message, log line and summary that names a URL. The
//! secrets themselves are [`crate::config::secret::Secret`]s and never formatted at all.

/// The URL with any password in it replaced by `***` (the user name stays: it helps and
/// is not a secret). Text that is not a URL comes back as it is.
pub fn mask_url(url: &str) -> String {
    mask_urls_in(url)
}

/// Every `scheme://user:password@` in free text (an error message, a log line) with the
/// password replaced by `***`.
pub fn mask_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_url("https://alice:s3cr3t@ch.example.com:8443/?x=1"),
            "https://alice:***@ch.example.com:8443/?x=1"
        );
        assert_eq!(mask_url("http://127.0.0.1:8123"), "http://127.0.0.1:8123");
        assert_eq!(mask_url("http://bob@h/"), "http://bob@h/");
        assert_eq!(
            mask_urls_in("error at \"http://u:p%40ss@h:1/x\" and http://a:b@c done"),
            "error at \"http://u:***@h:1/x\" and http://a:***@c done"
        );
        assert_eq!(mask_urls_in("no url here"), "no url here");
        assert!(!mask_urls_in("x://u:pw@h").contains("pw"));
    }
}
