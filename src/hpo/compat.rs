//! Which Optuna client can talk to which Optuna gRPC storage server, and which client a trial
//! image can install: the facts trial batch validation and the client pin default rest on.
//!
//! Known facts (issue 11): optuna 5.1's gRPC server rejects 5.0 and 4.5 clients (the timestamp
//! format on the wire changed); a 5.0 server serves 4.5, 5.0 and 5.1 clients; Python 3.8 cannot
//! install optuna newer than 4.5 (Optuna 5 needs Python 3.9). For a server version outside this
//! table only the same version is known to work.

/// A version as `(major, minor, patch)`.
pub type Version = (u32, u32, u32);

/// Parses `X.Y.Z`.
pub fn parse(v: &str) -> Option<Version> {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Some(a)), Some(Some(b)), Some(Some(c)), None) => Some((a, b, c)),
        _ => None,
    }
}

/// A minor series, `(major, minor)`.
type Series = (u32, u32);

/// The minor series of clients each server minor series accepts.
const SERVES: &[(Series, &[Series])] = &[((5, 0), &[(4, 5), (5, 0), (5, 1)]), ((5, 1), &[(5, 1)])];

/// The newest Optuna a Python 3.8 image can install.
pub const PYTHON_3_8_NEWEST: &str = "4.5.0";

/// Whether a `client` can talk to a `server`.
pub fn serves(server: Version, client: Version) -> bool {
    match SERVES.iter().find(|(s, _)| *s == (server.0, server.1)) {
        Some((_, clients)) => clients.contains(&(client.0, client.1)),
        None => server == client,
    }
}

/// The Python minor version (`3.N` -> N) an image's tag names, as the seed's default images do
/// (`ghcr.io/astral-sh/uv:python3.8-bookworm-slim`) and the official `python:3.N-...` images;
/// None when the tag does not say.
pub fn image_python_minor(image: &str) -> Option<u32> {
    let (repo, tag) = image.rsplit('/').next()?.split_once(':')?;
    let rest = match tag.find("python3.") {
        Some(at) => &tag[at + "python3.".len()..],
        None if repo == "python" => tag.strip_prefix("3.")?,
        None => return None,
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The oldest Python minor (3.N) each client minor series installs on.
fn min_python(client: Version) -> u32 {
    if client.0 >= 5 {
        9
    } else {
        8
    }
}

/// Why `image` cannot run an Optuna `client`, if it cannot.
pub fn image_refuses(image: &str, client: Version) -> Option<String> {
    let minor = image_python_minor(image)?;
    let needs = min_python(client);
    (minor < needs).then(|| {
        format!(
            "image {image} has Python 3.{minor}, which cannot install optuna {}.{}.{} (it needs Python 3.{needs} or newer)",
            client.0, client.1, client.2
        )
    })
}

/// The client pin when the spec gives none: the server's version, unless the image's tag names
/// a Python too old for it, then the newest that Python installs.
pub fn default_client(server: &str, image: &str) -> String {
    match (parse(server), image_python_minor(image)) {
        (Some(s), Some(minor)) if minor < min_python(s) => PYTHON_3_8_NEWEST.to_string(),
        _ => server.to_string(),
    }
}

/// The clients a server accepts, for messages: "optuna 4.5, 5.0 and 5.1 clients".
pub fn accepted(server: Version) -> String {
    match SERVES.iter().find(|(s, _)| *s == (server.0, server.1)) {
        Some((_, clients)) => {
            let series: Vec<String> = clients.iter().map(|(a, b)| format!("{a}.{b}")).collect();
            match series.split_last() {
                Some((last, [])) => format!("only optuna {last} clients"),
                Some((last, rest)) => format!("optuna {} and {last} clients", rest.join(", ")),
                None => "no client".into(),
            }
        }
        None => format!("only optuna {} clients (no other version is known to work with it)", show(server)),
    }
}

/// Written as `X.Y.Z`.
pub fn show(v: Version) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_5_0_server_serves_4_5_to_5_1_and_a_5_1_server_only_5_1() {
        assert!(serves((5, 0, 0), (4, 5, 0)));
        assert!(serves((5, 0, 0), (5, 1, 0)));
        assert!(!serves((5, 1, 0), (5, 0, 0)));
        assert!(!serves((5, 1, 0), (4, 5, 0)));
        assert!(serves((5, 1, 0), (5, 1, 0)));
        assert!(!serves((5, 0, 0), (4, 4, 0)));
        assert!(serves((4, 2, 1), (4, 2, 1)) && !serves((4, 2, 1), (4, 2, 0)));
    }

    #[test]
    fn the_client_default_follows_the_python_the_image_tag_names() {
        assert_eq!(image_python_minor("ghcr.io/astral-sh/uv:python3.8-bookworm-slim"), Some(8));
        assert_eq!(image_python_minor("python:3.12-slim"), Some(12));
        assert_eq!(image_python_minor("example.com/tools:3.8"), None);
        assert_eq!(image_python_minor("registry:5000/x/uv:python3.12-slim"), Some(12));
        assert_eq!(image_python_minor("pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime"), None);
        assert_eq!(default_client("5.0.0", "ghcr.io/astral-sh/uv:python3.8-bookworm-slim"), "4.5.0");
        assert_eq!(default_client("5.0.0", "ghcr.io/astral-sh/uv:python3.12-bookworm-slim"), "5.0.0");
        assert_eq!(default_client("5.1.0", "pytorch/pytorch:2.1.0-cuda12.1-cudnn8-runtime"), "5.1.0");
        assert!(image_refuses("uv:python3.8-slim", (5, 0, 0)).is_some());
        assert!(image_refuses("uv:python3.8-slim", (4, 5, 0)).is_none());
    }
}
