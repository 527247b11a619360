//! Parsing of mod_wsgi's configuration directives (names, arguments, options
//! and defaults as documented for mod_wsgi 4/5), independent of Apache.
//!
//! Every parser returns a [`DirectiveError`] whose text names the directive and
//! says why the value is wrong; Apache prefixes it with the file and line, so
//! `apachectl configtest` reports all three.

use regex::Regex;
use thiserror::Error;

/// A refused directive value. `Display` gives `"<Directive>: <why>"`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{directive}: {message}")]
pub struct DirectiveError {
    /// Directive name, e.g. `WSGIScriptAlias`.
    pub directive: &'static str,
    /// Why the value was refused, naming the value.
    pub message: String,
}

fn err(directive: &'static str, message: impl Into<String>) -> DirectiveError {
    DirectiveError {
        directive,
        message: message.into(),
    }
}

/// Splits a raw argument string into words as Apache's `ap_getword_conf`
/// does: words are separated by whitespace; a word may be quoted with `"` or
/// `'`, inside which a backslash escapes the quote character. As mod_wsgi's
/// option parser (`wsgi_parse_option`: the name up to `=`, then the value by
/// `ap_getword_conf`), the value of a `name=value` word may be quoted too:
/// `process-group='localhost:8000'` gives `process-group=localhost:8000`
/// (mod_wsgi-express writes its options so).
///
/// Errors: an unterminated quote.
pub fn split_words(directive: &'static str, args: &str) -> Result<Vec<String>, DirectiveError> {
    let mut words = Vec::new();
    let mut chars = args.chars().peekable();
    let unterminated = || err(directive, format!("unterminated quote in {args:?}"));
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            if !take_quoted(&mut chars, first, &mut word) {
                return Err(unterminated());
            }
        } else {
            let mut named = false;
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
                if c == '=' && !named {
                    named = true;
                    if let Some(&q) = chars.peek().filter(|&&q| q == '"' || q == '\'') {
                        chars.next();
                        if !take_quoted(&mut chars, q, &mut word) {
                            return Err(unterminated());
                        }
                        break;
                    }
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// Appends to `word` the rest of a string quoted with `q` (its opening
/// quote taken), a backslash escaping `q`; returns whether it was closed.
fn take_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    q: char,
    word: &mut String,
) -> bool {
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&q) {
            word.push(q);
            chars.next();
        } else if c == q {
            return true;
        } else {
            word.push(c);
        }
    }
    false
}

/// Parses `On`/`Off` (case-insensitive), as Apache's FLAG directives.
pub fn parse_on_off(directive: &'static str, value: &str) -> Result<bool, DirectiveError> {
    if value.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(err(directive, format!("expected On or Off, got {value:?}")))
    }
}

/// `WSGIMapHEADToGET On|Off|Auto` (mod_wsgi; default Auto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapHeadToGet {
    /// HEAD reaches the application as GET always.
    On,
    /// HEAD reaches the application as HEAD.
    Off,
    /// As GET when Apache has output filters that may need the body (the
    /// default), as HEAD otherwise.
    #[default]
    Auto,
}

/// Parses the argument of `WSGIMapHEADToGET`.
pub fn parse_map_head_to_get(value: &str) -> Result<MapHeadToGet, DirectiveError> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(MapHeadToGet::On),
        "off" => Ok(MapHeadToGet::Off),
        "auto" => Ok(MapHeadToGet::Auto),
        _ => Err(err(
            "WSGIMapHEADToGET",
            format!("expected On, Off or Auto, got {value:?}"),
        )),
    }
}

/// Options of `WSGIScriptAlias`/`WSGIScriptAliasMatch` (`name=value` words
/// after the path); `None` means "inherit from the directory/server config".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasOptions {
    /// `process-group=`: daemon process group, `%{GLOBAL}` for embedded mode.
    pub process_group: Option<String>,
    /// `application-group=`: interpreter name (see [`expand_application_group`]).
    pub application_group: Option<String>,
    /// `callable-object=`: name of the WSGI callable in the script.
    pub callable_object: Option<String>,
    /// `pass-authorization=On|Off`.
    pub pass_authorization: Option<bool>,
}

/// How a script alias matches URLs.
#[derive(Debug, Clone)]
pub enum AliasPattern {
    /// `WSGIScriptAlias`: a URL path prefix, matched on segment boundaries,
    /// stored without a trailing `/` (so `/` is stored as `""`).
    Prefix(String),
    /// `WSGIScriptAliasMatch`: a regular expression matched against the URL path.
    Regex(Regex),
}

/// One `WSGIScriptAlias` or `WSGIScriptAliasMatch`.
#[derive(Debug, Clone)]
pub struct ScriptAlias {
    /// What URLs it applies to.
    pub pattern: AliasPattern,
    /// The script file or directory (for a match, may hold `$1`..`$9`).
    pub target: String,
    /// The options given after the target.
    pub options: AliasOptions,
}

/// Result of matching a URL path against a [`ScriptAlias`]: the file name
/// to give Apache (`r->filename`) is `head` followed by `rest`, the
/// unmatched rest of the URL, which Apache's directory walk turns into
/// `PATH_INFO` (as mod_alias and mod_wsgi do). In two parts so that a
/// `WSGIScriptAlias` match borrows its target rather than copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasMatch<'a> {
    /// The target (`WSGIScriptAlias`), or the target with the regular
    /// expression's groups substituted (`WSGIScriptAliasMatch`).
    pub head: std::borrow::Cow<'a, str>,
    /// The part of the URL path after the match.
    pub rest: &'a str,
}

impl AliasMatch<'_> {
    /// The whole file name (`head` + `rest`).
    pub fn filename(&self) -> String {
        [&*self.head, self.rest].concat()
    }
}

impl ScriptAlias {
    /// Parses the arguments of `WSGIScriptAlias` (`is_match == false`) or
    /// `WSGIScriptAliasMatch`: `URL-path file-path|directory-path [options]`.
    ///
    /// Errors: missing arguments, a bad regular expression, an unknown option
    /// or a bad option value, each named in the message.
    pub fn parse(args: &str, is_match: bool) -> Result<ScriptAlias, DirectiveError> {
        let directive = if is_match {
            "WSGIScriptAliasMatch"
        } else {
            "WSGIScriptAlias"
        };
        let words = split_words(directive, args)?;
        if words.len() < 2 {
            return Err(err(
                directive,
                format!(
                    "expected a URL path and a file or directory path, got {} argument(s) in {args:?}",
                    words.len()
                ),
            ));
        }
        let pattern = if is_match {
            AliasPattern::Regex(Regex::new(&words[0]).map_err(|e| {
                err(
                    directive,
                    format!("bad regular expression {:?}: {e}", words[0]),
                )
            })?)
        } else {
            if !words[0].starts_with('/') {
                return Err(err(
                    directive,
                    format!("URL path {:?} must start with '/'", words[0]),
                ));
            }
            AliasPattern::Prefix(words[0].trim_end_matches('/').to_string())
        };
        let mut target = words[1].clone();
        if matches!(pattern, AliasPattern::Prefix(_)) && words[0].ends_with('/') && target.len() > 1
        {
            target = target.trim_end_matches('/').to_string();
        }
        let options = parse_alias_options(directive, &words[2..])?;
        Ok(ScriptAlias {
            pattern,
            target,
            options,
        })
    }

    /// Matches a decoded URL path (`r->uri`). Output: the file name for
    /// Apache, or `None` when the alias does not apply.
    pub fn matches<'a>(&'a self, uri: &'a str) -> Option<AliasMatch<'a>> {
        match &self.pattern {
            AliasPattern::Prefix(prefix) => {
                let rest = &uri[prefix_match_len(prefix, uri)?..];
                if !(rest.is_empty() || rest.starts_with('/')) {
                    return None;
                }
                Some(AliasMatch {
                    head: std::borrow::Cow::Borrowed(&self.target),
                    rest,
                })
            }
            AliasPattern::Regex(re) => {
                let caps = re.captures(uri)?;
                let whole = caps.get(0)?;
                let mut head = String::new();
                caps.expand(&self.target, &mut head);
                Some(AliasMatch {
                    head: std::borrow::Cow::Owned(head),
                    rest: &uri[whole.end()..],
                })
            }
        }
    }
}

/// How many bytes at the start of `uri` the `WSGIScriptAlias` URL path
/// `prefix` matches, as mod_alias (and mod_wsgi) match: a run of `/` in
/// the prefix matches a run of one or more `/` in the URL (`//app` matches
/// `/app` and `//app`, `/a/b` matches `/a//b`); other bytes literally.
/// `None`: no match. The caller checks that a path segment ends there.
fn prefix_match_len(prefix: &str, uri: &str) -> Option<usize> {
    let (p, u) = (prefix.as_bytes(), uri.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < p.len() {
        if p[i] == b'/' {
            if u.get(j) != Some(&b'/') {
                return None;
            }
            while p.get(i) == Some(&b'/') {
                i += 1;
            }
            while u.get(j) == Some(&b'/') {
                j += 1;
            }
        } else {
            if u.get(j) != Some(&p[i]) {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    Some(j)
}

/// Parses `name=value` option words shared by `WSGIScriptAlias`,
/// `WSGIScriptAliasMatch` and `WSGIImportScript`.
pub fn parse_alias_options(
    directive: &'static str,
    words: &[String],
) -> Result<AliasOptions, DirectiveError> {
    let mut options = AliasOptions::default();
    for word in words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(err(
                directive,
                format!("unexpected argument {word:?}: options have the form name=value"),
            ));
        };
        if value.is_empty() && name != "application-group" {
            return Err(err(directive, format!("option {name:?} needs a value")));
        }
        match name {
            "process-group" => options.process_group = Some(value.to_string()),
            "application-group" => options.application_group = Some(value.to_string()),
            "callable-object" => {
                if !is_identifier(value) {
                    return Err(err(
                        directive,
                        format!("callable-object {value:?} is not a Python identifier"),
                    ));
                }
                options.callable_object = Some(value.to_string())
            }
            "pass-authorization" => {
                options.pass_authorization = Some(parse_on_off(directive, value).map_err(|_| {
                    err(
                        directive,
                        format!("pass-authorization expects On or Off, got {value:?}"),
                    )
                })?)
            }
            _ => {
                return Err(err(
                    directive,
                    format!(
                        "unknown option {name:?} (valid: process-group, application-group, callable-object, pass-authorization)"
                    ),
                ))
            }
        }
    }
    Ok(options)
}

/// Whether `s` is a valid Python identifier (ASCII subset, as WSGI callables
/// are in practice).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// `WSGIImportScript path process-group=G application-group=A` (mod_wsgi):
/// a script imported when the process starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    /// The script file.
    pub path: String,
    /// Where to import it (both required by mod_wsgi).
    pub options: AliasOptions,
}

/// Parses the arguments of `WSGIImportScript`.
pub fn parse_import_script(args: &str) -> Result<ImportScript, DirectiveError> {
    const D: &str = "WSGIImportScript";
    let words = split_words(D, args)?;
    let Some(path) = words.first() else {
        return Err(err(D, "expected a script path"));
    };
    let options = parse_alias_options(D, &words[1..])?;
    if options.process_group.is_none() || options.application_group.is_none() {
        return Err(err(
            D,
            "both process-group= and application-group= are required (use %{GLOBAL} for embedded mode and the main interpreter)",
        ));
    }
    Ok(ImportScript {
        path: path.clone(),
        options,
    })
}

/// Splits `WSGIPythonPath` (directories separated by `:`), dropping empties.
pub fn split_python_path(value: &str) -> Vec<String> {
    value
        .split(':')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// Expands an application group name as mod_wsgi does:
/// `%{GLOBAL}` → `""` (the main interpreter); `%{SERVER}` → server name with
/// `:port` unless the port is 80 or 443; `%{RESOURCE}` (the default) →
/// `%{SERVER}|SCRIPT_NAME`; `%{ENV:NAME}` → `env(NAME)` or `""`; anything
/// else is used literally.
pub fn expand_application_group(
    spec: &str,
    server_name: &str,
    port: u16,
    script_name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    let server = || {
        if port == 80 || port == 443 {
            server_name.to_string()
        } else {
            format!("{server_name}:{port}")
        }
    };
    match spec {
        "%{GLOBAL}" => String::new(),
        "%{SERVER}" => server(),
        "%{RESOURCE}" => format!("{}|{}", server(), script_name),
        _ => {
            if let Some(name) = spec
                .strip_prefix("%{ENV:")
                .and_then(|s| s.strip_suffix('}'))
            {
                env(name).unwrap_or_default()
            } else {
                spec.to_string()
            }
        }
    }
}

/// Whether a process-group value selects embedded mode (`%{GLOBAL}` or empty).
pub fn is_embedded_group(group: &str) -> bool {
    group.is_empty() || group == "%{GLOBAL}"
}

/// The process group a request goes to, from a `WSGIProcessGroup` value
/// (mod_wsgi WSGIProcessGroup): `%{ENV:NAME}` is `env(NAME)` (empty, hence
/// embedded, when unset); anything else is the group name itself.
pub fn expand_process_group(spec: &str, env: impl Fn(&str) -> Option<String>) -> String {
    match spec
        .strip_prefix("%{ENV:")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(name) => env(name).unwrap_or_default(),
        None => spec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_group_from_env() {
        let env = |n: &str| (n == "G").then(|| "web".to_string());
        assert_eq!(expand_process_group("%{ENV:G}", env), "web");
        assert_eq!(expand_process_group("%{ENV:X}", env), "");
        assert_eq!(expand_process_group("static", env), "static");
        assert_eq!(expand_process_group("%{GLOBAL}", env), "%{GLOBAL}");
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words("X", r#"  /a "b c"  'd \' e' f=g "#).unwrap(),
            vec!["/a", "b c", "d ' e", "f=g"]
        );
        assert!(split_words("X", "\"open").is_err());
        // mod_wsgi-express's quoted option values.
        assert_eq!(
            split_words(
                "X",
                r#"process-group='localhost:8000' application-group=%{GLOBAL} a="b \" c" x=y=z"#
            )
            .unwrap(),
            vec![
                "process-group=localhost:8000",
                "application-group=%{GLOBAL}",
                r#"a=b " c"#,
                "x=y=z"
            ]
        );
        assert!(split_words("X", "a='open").is_err());
        assert!(split_words("X", "").unwrap().is_empty());
    }

    #[test]
    fn on_off() {
        assert_eq!(parse_on_off("D", "ON"), Ok(true));
        assert_eq!(parse_on_off("D", "off"), Ok(false));
        let e = parse_on_off("WSGIChunkedRequest", "Maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "WSGIChunkedRequest: expected On or Off, got \"Maybe\""
        );
    }

    #[test]
    fn script_alias_prefix() {
        let a = ScriptAlias::parse(
            "/app /srv/app.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL} callable-object=app pass-authorization=On",
            false,
        )
        .unwrap();
        assert_eq!(a.options.process_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(a.options.application_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(a.options.callable_object.as_deref(), Some("app"));
        assert_eq!(a.options.pass_authorization, Some(true));
        assert_eq!(a.matches("/app").unwrap().filename(), "/srv/app.wsgi");
        assert_eq!(
            a.matches("/app/x/y").unwrap().filename(),
            "/srv/app.wsgi/x/y"
        );
        assert_eq!(a.matches("/application"), None);
        assert_eq!(a.matches("/other"), None);
    }

    #[test]
    fn script_alias_prefix_slash_runs() {
        // As mod_alias: runs of '/' match runs of '/' (MergeSlashes Off).
        let a = ScriptAlias::parse("//slashy /srv/s.wsgi", false).unwrap();
        assert_eq!(a.matches("//slashy").unwrap().filename(), "/srv/s.wsgi");
        assert_eq!(a.matches("/slashy").unwrap().filename(), "/srv/s.wsgi");
        assert_eq!(
            a.matches("///slashy/x").unwrap().filename(),
            "/srv/s.wsgi/x"
        );
        assert_eq!(a.matches("/slashyx"), None);
        let b = ScriptAlias::parse("/a/b /srv/b.wsgi", false).unwrap();
        assert_eq!(b.matches("/a//b").unwrap().filename(), "/srv/b.wsgi");
        assert_eq!(b.matches("/a//b//c").unwrap().filename(), "/srv/b.wsgi//c");
        assert_eq!(b.matches("/ab"), None);
        assert_eq!(b.matches("/a"), None);
        let root = ScriptAlias::parse("/ /srv/r.wsgi", false).unwrap();
        assert_eq!(root.matches("//x").unwrap().filename(), "/srv/r.wsgi//x");
    }

    #[test]
    fn script_alias_root_and_directory() {
        let a = ScriptAlias::parse("/ /srv/app.wsgi", false).unwrap();
        assert_eq!(a.matches("/").unwrap().filename(), "/srv/app.wsgi/");
        assert_eq!(a.matches("/x").unwrap().filename(), "/srv/app.wsgi/x");
        let d = ScriptAlias::parse("/scripts/ /srv/scripts/", false).unwrap();
        assert_eq!(
            d.matches("/scripts/a.wsgi/p").unwrap().filename(),
            "/srv/scripts/a.wsgi/p"
        );
    }

    #[test]
    fn script_alias_match() {
        let a = ScriptAlias::parse("^/wsgi/([^/]+) /srv/$1.wsgi", true).unwrap();
        assert_eq!(
            a.matches("/wsgi/foo/bar").unwrap().filename(),
            "/srv/foo.wsgi/bar"
        );
        assert_eq!(a.matches("/other"), None);
        let e = ScriptAlias::parse("^/( /x", true).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("WSGIScriptAliasMatch: bad regular expression"));
    }

    #[test]
    fn script_alias_errors() {
        let e = ScriptAlias::parse("/x", false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("WSGIScriptAlias: expected a URL path"),
            "{e}"
        );
        let e = ScriptAlias::parse("x /a.wsgi", false).unwrap_err();
        assert!(e.to_string().contains("must start with '/'"));
        let e = ScriptAlias::parse("/x /a.wsgi colour=red", false).unwrap_err();
        assert!(e.to_string().contains("unknown option \"colour\""), "{e}");
        let e = ScriptAlias::parse("/x /a.wsgi callable-object=1abc", false).unwrap_err();
        assert!(e.to_string().contains("not a Python identifier"));
        let e = ScriptAlias::parse("/x /a.wsgi pass-authorization=yes", false).unwrap_err();
        assert!(e
            .to_string()
            .contains("pass-authorization expects On or Off"));
        let e = ScriptAlias::parse("/x /a.wsgi stray", false).unwrap_err();
        assert!(e.to_string().contains("unexpected argument \"stray\""));
    }

    #[test]
    fn import_script() {
        let s = parse_import_script("/a.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}")
            .unwrap();
        assert_eq!(s.path, "/a.wsgi");
        assert!(parse_import_script("/a.wsgi").is_err());
        assert!(parse_import_script("").is_err());
    }

    #[test]
    fn head_to_get() {
        assert_eq!(parse_map_head_to_get("AUTO"), Ok(MapHeadToGet::Auto));
        assert_eq!(parse_map_head_to_get("off"), Ok(MapHeadToGet::Off));
        assert!(parse_map_head_to_get("x").is_err());
    }

    #[test]
    fn application_groups() {
        let none = |_: &str| None;
        assert_eq!(
            expand_application_group("%{GLOBAL}", "h", 8000, "/a", none),
            ""
        );
        assert_eq!(
            expand_application_group("%{SERVER}", "h", 8000, "/a", none),
            "h:8000"
        );
        assert_eq!(
            expand_application_group("%{SERVER}", "h", 80, "/a", none),
            "h"
        );
        assert_eq!(
            expand_application_group("%{RESOURCE}", "h", 443, "/a", none),
            "h|/a"
        );
        assert_eq!(
            expand_application_group("%{ENV:GRP}", "h", 80, "", |n| (n == "GRP")
                .then(|| "g1".into())),
            "g1"
        );
        assert_eq!(
            expand_application_group("mygroup", "h", 80, "", none),
            "mygroup"
        );
    }

    #[test]
    fn python_path() {
        assert_eq!(split_python_path("/a::/b"), vec!["/a", "/b"]);
        assert!(is_embedded_group("%{GLOBAL}") && is_embedded_group("") && !is_embedded_group("g"));
    }
}
