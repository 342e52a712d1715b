//! Name rules (Kubernetes DNS-1123 names, S3 bucket names), with messages that say what would be
//! valid.

/// Checks a DNS-1123 label (namespaces, most object names that become labels or hostnames).
pub fn check_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!("{name:?} is {} characters long; a DNS-1123 label has at most 63", name.len()));
    }
    if !label_chars_ok(name) {
        return Err(format!(
            "{name:?} is not a valid DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. {:?})",
            suggest(name)
        ));
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (Secret, ConfigMap, ServiceAccount names).
pub fn check_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "{name:?} is {} characters long; a DNS-1123 subdomain has at most 253",
            name.len()
        ));
    }
    if !name.split('.').all(|part| !part.is_empty() && label_chars_ok(part)) {
        return Err(format!(
            "{name:?} is not a valid DNS-1123 subdomain: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. {:?})",
            suggest(name)
        ));
    }
    Ok(())
}

fn label_chars_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && ok(b[0]) && ok(b[b.len() - 1]) && b.iter().all(|&c| ok(c) || c == b'-')
}

/// A nearby valid spelling, to show in the message.
fn suggest(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while s.starts_with('-') {
        s.remove(0);
    }
    while s.ends_with('-') {
        s.pop();
    }
    s.truncate(63);
    if s.is_empty() {
        "my-name".into()
    } else {
        s
    }
}

/// Checks an environment variable name (C identifier, as Kubernetes recommends).
pub fn check_env_var(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid environment variable name: use letters, digits and '_', not starting with a digit"))
    }
}

/// Checks a ConfigMap key.
pub fn check_config_key(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid ConfigMap key: use letters, digits, '-', '_' and '.'"))
    }
}

/// Checks a bucket name against the S3 naming rules for general purpose buckets.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if name.contains("${") {
        return Ok(()); // an unresolved reference is reported by the Terraform resolver
    }
    let rule = if !(3..=63).contains(&name.len()) {
        Some(format!("is {} characters long; S3 bucket names have 3 to 63", name.len()))
    } else if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.') {
        Some("may contain only lowercase letters, digits, '-' and '.'".into())
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("must start and end with a letter or digit".into())
    } else if name.contains("..") || name.contains(".-") || name.contains("-.") {
        Some("may not contain '..', '.-' or '-.'".into())
    } else if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        Some("may not look like an IP address".into())
    } else if let Some(p) = ["xn--", "sthree-", "amzn-s3-demo-"].iter().find(|p| name.starts_with(**p)) {
        Some(format!("may not start with the reserved prefix {p:?}"))
    } else {
        ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .find(|s| name.ends_with(**s))
            .map(|s| format!("may not end with the reserved suffix {s:?}"))
    };
    match rule {
        Some(r) => Err(format!("{name:?} is not a valid S3 bucket name: it {r}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(check_label("team-a").is_ok());
        assert!(check_label("a").is_ok());
        assert!(check_label("Team_A").unwrap_err().contains("\"team-a\""));
        assert!(check_label("-a").is_err());
        assert!(check_label("a.b").is_err());
        assert!(check_label(&"a".repeat(64)).is_err());
    }

    #[test]
    fn subdomains() {
        assert!(check_subdomain("mlflow.backend-store").is_ok());
        assert!(check_subdomain("a..b").is_err());
        assert!(check_subdomain("UPPER").is_err());
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "trainstack-dev-scratch-123456789012", "a.b-c", &"a".repeat(63)] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("ab", "3 to 63"),
            ("Upper", "lowercase"),
            ("under_score", "lowercase"),
            ("-start", "start and end"),
            ("a..b", "'..'"),
            ("192.168.1.1", "IP address"),
            ("xn--abc", "reserved prefix"),
            ("data-s3alias", "reserved suffix"),
        ] {
            let e = check_bucket_name(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
