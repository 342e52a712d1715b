//! The value templates of `aws.secrets[].data`: text with `{{ field }}` placeholders over the
//! JSON fields of a Secrets Manager secret, filled by `apply` or translated for External Secrets.
//!
//! Deliberately not minijinja: the same template must mean the same thing when the External
//! Secrets Operator fills it with Go's text/template, so only what both can say is accepted:
//! a field, optionally through `urlencode`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay; everything else is percent-encoded, so a password
/// fits in a URI's user info whatever it contains.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A parsed value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field { name: String, urlencode: bool },
}

impl ValueTemplate {
    /// Parses `text`; the error says what is wrong and what would be valid.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("{text:?}: a placeholder opened with {{{{ is not closed with }}}}"))?;
            parts.push(placeholder(after[..end].trim())?);
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(ValueTemplate { parts })
    }

    /// The JSON fields the template reads, in order of appearance.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The value with every field filled; `Err(field)` names the first field `lookup` lacks.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { name, urlencode } => {
                    let v = lookup(name).ok_or_else(|| name.clone())?;
                    match urlencode {
                        true => out.extend(utf8_percent_encode(v, ENCODED)),
                        false => out.push_str(v),
                    }
                }
            }
        }
        Ok(out)
    }

    /// The same template for the External Secrets Operator (`engineVersion: v2`, Go
    /// text/template): `{{ .field }}`, and `urlencode` as Go's `urlquery`, which differs only in
    /// writing a space as `+` (RDS-generated passwords contain no space).
    pub fn to_go_template(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Field { name, urlencode: false } => format!("{{{{ .{name} }}}}"),
                Part::Field { name, urlencode: true } => format!("{{{{ .{name} | urlquery }}}}"),
            })
            .collect()
    }
}

fn placeholder(inner: &str) -> Result<Part, String> {
    let (name, filter) = match inner.split_once('|') {
        Some((n, f)) => (n.trim(), Some(f.trim())),
        None => (inner, None),
    };
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{{{{ {inner} }}}} is not a placeholder: use {{{{ field }}}} or {{{{ field | urlencode }}}}, where field is a JSON key of the secret (letters, digits, _)"
        ));
    }
    match filter {
        None => Ok(Part::Field { name: name.into(), urlencode: false }),
        Some("urlencode") => Ok(Part::Field { name: name.into(), urlencode: true }),
        Some(other) => {
            Err(format!("{{{{ {inner} }}}}: unknown filter {other:?}; the only filter is urlencode"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ValueTemplate;

    #[test]
    fn a_uri_template_fills_fields_and_encodes_only_where_asked() {
        let t = ValueTemplate::parse("postgresql://{{ username }}:{{password|urlencode}}@db:5432/mlflow")
            .unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["username", "password"]);
        let v = t.render(|f| Some(if f == "username" { "ml:user" } else { "p@ss/w:rd ~" })).unwrap();
        assert_eq!(v, "postgresql://ml:user:p%40ss%2Fw%3Ard%20~@db:5432/mlflow");
        assert_eq!(t.render(|f| (f == "username").then_some("u")), Err("password".to_string()));
    }

    #[test]
    fn the_external_secrets_form_says_the_same_in_go_template() {
        let t = ValueTemplate::parse("postgresql://{{ username }}:{{ password | urlencode }}@db/x").unwrap();
        assert_eq!(t.to_go_template(), "postgresql://{{ .username }}:{{ .password | urlquery }}@db/x");
        assert_eq!(ValueTemplate::parse("plain").unwrap().to_go_template(), "plain");
    }

    #[test]
    fn what_go_templates_cannot_say_is_refused() {
        for bad in ["{{ password", "{{ pass-word }}", "{{ password | upper }}", "{{ }}", "{{ .password }}"] {
            assert!(ValueTemplate::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
