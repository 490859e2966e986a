//! The request line's `http.target`, with phone numbers masked however they
//! were encoded: the service decodes a path before reading a number from it,
//! so the log must read the same number the same way before masking it.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// What the service's phone parser accepts besides digits (`domain::phone`).
const SEPARATORS: &str = " +-.()";
/// A client or a proxy may encode twice (`%252B`); a third time is absurd,
/// and the loop must end.
const MOST_DECODINGS: usize = 3;

/// The path and query with every path segment, query key and query value
/// that reads as a phone number once decoded masked as the logs mask numbers
/// (`+591*****008`); everything else as it was sent.
pub fn masked_target(target: &str) -> String {
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let path: Vec<Cow<str>> = path.split('/').map(masked_part).collect();
    let path = path.join("/");
    let Some(query) = query else {
        return path;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => format!("{}={}", masked_part(key), masked_part(value)),
            None => masked_part(pair).into_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// `part` as sent, or masked when it reads as a phone number.
fn masked_part(part: &str) -> Cow<'_, str> {
    match phone_digits(&decoded(part)) {
        Some(digits) => crate::domain::mask_phone(&format!("+{digits}")).into(),
        None => part.into(),
    }
}

/// `part` percent-decoded until nothing changes (lower- or upper-case hex).
fn decoded(part: &str) -> String {
    let mut text = part.to_owned();
    for _ in 0..MOST_DECODINGS {
        let next = percent_decode_str(&text).decode_utf8_lossy().into_owned();
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// The digits of `text` when it reads as a phone number: only digits and the
/// separators the parser accepts, and either a leading `+` (`%2B`, or `+`
/// for a space in a query) or eight digits or more (a national number). A
/// short prefix (`/admin/fraud/prefixes/591`) and a day (`2026-11-27`) are
/// no numbers.
fn phone_digits(text: &str) -> Option<String> {
    let text = text.trim();
    if !text.chars().all(|c| c.is_ascii_digit() || SEPARATORS.contains(c)) {
        return None;
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let marked = text.starts_with('+') && !digits.is_empty();
    (marked || (digits.len() >= 8 && !is_day(text))).then_some(digits)
}

/// `YYYY-MM-DD`, as the stats' `from` and `to` are given.
fn is_day(text: &str) -> bool {
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    groups == [4, 2, 2]
}

#[cfg(test)]
mod tests {
    use super::masked_target;

    const MASKED: &str = "+591*****008";

    #[test]
    fn phone_numbers_in_paths_are_masked() {
        let base = "/admin/clients/shop/test-numbers/";
        for sent in [
            "%2B59169657008",
            "%2b59169657008",
            "+59169657008",
            "59169657008",
            "%2B591%20696%2057008",
            "+591%20696-57008",
            "%2B591-696-57008",
            "+591%20(696)%2057.008",
            "%252B591%2520696%252057008",
            "%25252B59169657008",
            "%2b591%2d696%2d57008",
            "+591+696+57008",
            "%20+59169657008%20",
        ] {
            assert_eq!(
                masked_target(&format!("{base}{sent}")),
                format!("{base}{MASKED}"),
                "{sent}"
            );
        }
        assert_eq!(
            masked_target(&format!("{base}+59169657008?x=1")),
            format!("{base}{MASKED}?x=1")
        );
    }

    #[test]
    fn phone_numbers_in_queries_are_masked_however_encoded() {
        for sent in [
            "phone=%2B59169657008",
            "phone=+59169657008",
            "phone=+591+696+57008",
            "phone=%2B591%20696%2057008",
            "phone=%252B591%2520696%252057008",
            "phone=591-696-57008",
        ] {
            assert_eq!(
                masked_target(&format!("/otp?{sent}")),
                format!("/otp?phone={MASKED}"),
                "{sent}"
            );
        }
        assert_eq!(
            masked_target("/x?a=1&%2B59169657008&b=2"),
            format!("/x?a=1&{MASKED}&b=2")
        );
    }

    #[test]
    fn what_is_no_phone_number_is_left_as_sent() {
        for target in [
            "/otp/0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01",
            "/otp/01936542-7123-7c3d-9f2e-3b1d5e8a9c01",
            "/admin/fraud/prefixes/591",
            "/admin/fraud/prefixes/591696",
            "/admin/stats?from=2026-11-27&to=2026-12-03&group_by=client",
            "/webhooks?status=failed&limit=100",
            "/healthz",
            "/docs/",
            "/x?%ZZ=%E2%28",
        ] {
            assert_eq!(masked_target(target), target);
        }
    }
}
