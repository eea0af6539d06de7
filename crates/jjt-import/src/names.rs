//! Input names from the frameworks' paths: `params['conv']['kernel']` → `params.conv.kernel`,
//! `params[0]['w']` → `params.0.w`, `conv1.weight` stays; any other character becomes `_`.

/// The jjt name of a framework's path (see the module documentation). Always an identifier of
/// the text format ([`jjt_ir::builder::is_identifier`]).
pub fn sanitize(source: &str) -> String {
    let mut segments: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = source.chars().peekable();
    let flush = |cur: &mut String, segments: &mut Vec<String>| {
        if !cur.is_empty() {
            segments.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut cur, &mut segments),
            '[' => {
                flush(&mut cur, &mut segments);
                // `['key']`, `["key"]` or `[0]`: the key is a segment.
                let quote = chars.next_if(|&q| q == '\'' || q == '"');
                let mut key = String::new();
                for k in chars.by_ref() {
                    if Some(k) == quote || (quote.is_none() && k == ']') {
                        break;
                    }
                    key.push(k);
                }
                if quote.is_some() {
                    chars.next_if_eq(&']');
                }
                let key: String = key
                    .chars()
                    .map(|k| if k.is_ascii_alphanumeric() || k == '_' { k } else { '_' })
                    .collect();
                if !key.is_empty() {
                    segments.push(key);
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' => cur.push(c),
            _ => cur.push('_'),
        }
    }
    flush(&mut cur, &mut segments);
    if segments.is_empty() {
        return "_".to_string();
    }
    if segments[0].starts_with(|c: char| c.is_ascii_digit()) {
        segments[0].insert(0, '_');
    }
    segments.join(".")
}

#[cfg(test)]
mod tests {
    use super::sanitize;
    use jjt_ir::builder::is_identifier;

    #[test]
    fn framework_paths_become_dotted_names() {
        for (from, to) in [
            ("params['conv']['kernel']", "params.conv.kernel"),
            ("params[0]['w']", "params.0.w"),
            ("conv1.weight", "conv1.weight"),
            ("x", "x"),
            ("params[\"a b\"]", "params.a_b"),
            ("layers.0/attn:q", "layers.0_attn_q"),
            ("0", "_0"),
            ("", "_"),
            ("a..b", "a.b"),
        ] {
            let got = sanitize(from);
            assert_eq!(got, to, "{from}");
            assert!(is_identifier(&got), "{got}");
        }
    }
}
