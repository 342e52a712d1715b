//! Kubernetes name rules (DNS-1123), with messages that say what would be valid.

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
}
