//! Arguments of mod_wsgi's interpreter and dispatch directives:
//! `WSGIDispatchScript`, `WSGIPythonOptimize`, `WSGIPythonHashSeed`,
//! `WSGISwitchInterval`, `WSGIPythonWarnings`, `WSGIAcceptMutex`.

use crate::directives::{split_words, DirectiveError};

fn err(directive: &'static str, message: impl Into<String>) -> DirectiveError {
    DirectiveError {
        directive,
        message: message.into(),
    }
}

/// `WSGIDispatchScript path [application-group=name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchScript {
    /// The script file, as written (the module makes it absolute).
    pub path: String,
    /// `application-group=` (the interpreter it runs in); `None`: the
    /// main interpreter (`%{GLOBAL}`), as mod_wsgi.
    pub application_group: Option<String>,
}

/// Parses `WSGIDispatchScript`'s raw arguments. mod_wsgi takes only
/// `application-group=` (the script runs in the Apache child, so there is
/// no process group to choose).
pub fn parse_dispatch_script(args: &str) -> Result<DispatchScript, DirectiveError> {
    parse_child_script("WSGIDispatchScript", args)
}

/// Parses the raw arguments of a directive naming a script that runs in
/// Apache's child process (`WSGIDispatchScript`, `WSGIAccessScript`,
/// `WSGIAuthUserScript`, `WSGIAuthGroupScript`): `path
/// [application-group=name]`, the only option mod_wsgi takes for them.
/// Errors name `directive`.
pub fn parse_child_script(
    directive: &'static str,
    args: &str,
) -> Result<DispatchScript, DirectiveError> {
    let d = directive;
    let words = split_words(d, args)?;
    let Some((path, options)) = words.split_first() else {
        return Err(err(d, "expected the path of the script"));
    };
    if path.is_empty() {
        return Err(err(d, "the path of the script is empty"));
    }
    let mut application_group = None;
    for o in options {
        match o.split_once('=') {
            Some(("application-group", v)) => {
                if v.is_empty() {
                    return Err(err(d, "application-group= needs a name (or %{GLOBAL})"));
                }
                if application_group.is_some() {
                    return Err(err(d, "application-group= is given twice"));
                }
                application_group = Some(v.to_string());
            }
            Some(("process-group", _)) => {
                return Err(err(
                    d,
                    format!(
                        "process-group= is not an option of {d}: the script runs in Apache's \
                         child process{}",
                        if d == "WSGIDispatchScript" {
                            "; its process_group(environ) chooses the group"
                        } else {
                            ", whatever process group the application runs in"
                        }
                    ),
                ))
            }
            _ => {
                return Err(err(
                    d,
                    format!("unknown option {o:?} (the only option is application-group=NAME)"),
                ))
            }
        }
    }
    Ok(DispatchScript {
        path: path.clone(),
        application_group,
    })
}

/// `WSGIPythonOptimize 0|1|2` (Python's `-O` level).
pub fn parse_optimize(value: &str) -> Result<i32, DirectiveError> {
    match value.trim() {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(err(
            "WSGIPythonOptimize",
            format!("expected 0, 1 or 2 (Python's -O level), got {value:?}"),
        )),
    }
}

/// `WSGIPythonHashSeed random|N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    /// A random seed per process (Python's default).
    Random,
    /// A fixed seed; `0` disables hash randomisation.
    Fixed(u32),
}

/// Parses `WSGIPythonHashSeed`: `random` or an integer 0–4294967295 (as
/// `PYTHONHASHSEED`).
pub fn parse_hash_seed(value: &str) -> Result<HashSeed, DirectiveError> {
    if value == "random" {
        return Ok(HashSeed::Random);
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = value.parse::<u32>() {
            return Ok(HashSeed::Fixed(n));
        }
    }
    Err(err(
        "WSGIPythonHashSeed",
        format!("expected \"random\" or an integer from 0 to 4294967295, got {value:?}"),
    ))
}

/// `WSGISwitchInterval seconds` (positive, decimal): `sys.setswitchinterval`.
pub fn parse_switch_interval(value: &str) -> Result<f64, DirectiveError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v <= 1e6 => Ok(v),
        _ => Err(err(
            "WSGISwitchInterval",
            format!("expected a positive number of seconds such as 0.005, got {value:?}"),
        )),
    }
}

/// `WSGIPythonWarnings option` (`action:message:category:module:lineno`,
/// as Python's `-W`): at most 5 fields, the action one of Python's.
pub fn parse_warnings(value: &str) -> Result<String, DirectiveError> {
    let d = "WSGIPythonWarnings";
    let fields: Vec<&str> = value.split(':').collect();
    if value.is_empty() || fields.len() > 5 {
        return Err(err(
            d,
            format!("expected action[:message[:category[:module[:lineno]]]] as for python -W, got {value:?}"),
        ));
    }
    let action = fields[0].trim();
    let actions = ["default", "error", "ignore", "always", "module", "once"];
    if !action.is_empty()
        && !actions
            .iter()
            .any(|a| a.starts_with(&action.to_ascii_lowercase()))
    {
        return Err(err(
            d,
            format!(
                "unknown action {action:?} in {value:?} (one of {})",
                actions.join(", ")
            ),
        ));
    }
    if let Some(line) = fields.get(4) {
        if !line.trim().is_empty() && line.trim().parse::<u32>().is_err() {
            return Err(err(
                d,
                format!("line number {line:?} in {value:?} is not a number"),
            ));
        }
    }
    Ok(value.to_string())
}

/// `WSGIAcceptMutex Default|method`: the methods of Apache's `Mutex`
/// directive (`default`, `fcntl[:file]`, `flock[:file]`, `posixsem`,
/// `sysvsem`, `pthread`, `file`, `sem`). Accepted and without effect: rwsgi's
/// daemon processes need no accept mutex.
pub fn parse_accept_mutex(value: &str) -> Result<(), DirectiveError> {
    let method = value.split(':').next().unwrap_or("").to_ascii_lowercase();
    let known = [
        "default", "yes", "fcntl", "flock", "file", "posixsem", "sysvsem", "sem", "pthread",
    ];
    if known.contains(&method.as_str()) {
        Ok(())
    } else {
        Err(err(
            "WSGIAcceptMutex",
            format!("unknown mutex method {value:?} (one of Default, fcntl, flock, posixsem, sysvsem, pthread)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_script() {
        let d = parse_dispatch_script("/srv/dispatch.py").unwrap();
        assert_eq!(d.path, "/srv/dispatch.py");
        assert_eq!(d.application_group, None);
        let d =
            parse_dispatch_script("\"/srv/my dispatch.py\" application-group=%{GLOBAL}").unwrap();
        assert_eq!(d.path, "/srv/my dispatch.py");
        assert_eq!(d.application_group.as_deref(), Some("%{GLOBAL}"));
        for (args, needle) in [
            ("", "expected the path"),
            ("/a.py process-group=x", "process-group= is not an option"),
            ("/a.py callable-object=x", "unknown option"),
            ("/a.py application-group=", "needs a name"),
            ("/a.py application-group=a application-group=b", "twice"),
            ("\"/a.py", "unterminated quote"),
        ] {
            let e = parse_dispatch_script(args).unwrap_err().to_string();
            assert!(
                e.starts_with("WSGIDispatchScript: ") && e.contains(needle),
                "{args}: {e}"
            );
        }
    }

    #[test]
    fn auth_script_arguments() {
        let a = parse_child_script(
            "WSGIAuthUserScript",
            "/srv/auth.wsgi application-group=auth",
        )
        .unwrap();
        assert_eq!(a.path, "/srv/auth.wsgi");
        assert_eq!(a.application_group.as_deref(), Some("auth"));
        let e = parse_child_script("WSGIAccessScript", "/a.py process-group=d")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("WSGIAccessScript: ") && e.contains("whatever process group"),
            "{e}"
        );
        let e = parse_child_script("WSGIAuthGroupScript", "")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("WSGIAuthGroupScript: expected the path"),
            "{e}"
        );
    }

    #[test]
    fn optimize_and_hash_seed() {
        assert_eq!(parse_optimize("2"), Ok(2));
        assert!(parse_optimize("3").is_err());
        assert!(parse_optimize("-1").is_err());
        assert_eq!(parse_hash_seed("random"), Ok(HashSeed::Random));
        assert_eq!(parse_hash_seed("0"), Ok(HashSeed::Fixed(0)));
        assert_eq!(parse_hash_seed("4294967295"), Ok(HashSeed::Fixed(u32::MAX)));
        for bad in ["4294967296", "-1", "", "Random", "+5", "1e3"] {
            let e = parse_hash_seed(bad).unwrap_err().to_string();
            assert!(e.starts_with("WSGIPythonHashSeed: "), "{e}");
        }
    }

    #[test]
    fn switch_interval_warnings_mutex() {
        assert_eq!(parse_switch_interval("0.002"), Ok(0.002));
        for bad in ["0", "-1", "x", "inf", "NaN", ""] {
            assert!(parse_switch_interval(bad).is_err(), "{bad}");
        }
        assert!(parse_warnings("ignore::DeprecationWarning").is_ok());
        assert!(parse_warnings("error").is_ok());
        assert!(
            parse_warnings("i::UserWarning").is_ok(),
            "abbreviated action"
        );
        assert!(parse_warnings("ignore:a:b:c:12").is_ok());
        assert!(parse_warnings("bogus::Warning").is_err());
        assert!(parse_warnings("ignore:a:b:c:x").is_err());
        assert!(parse_warnings("a:b:c:d:1:f").is_err());
        assert!(parse_warnings("").is_err());
        for ok in [
            "Default",
            "posixsem",
            "fcntl:/tmp/lock",
            "pthread",
            "sysvsem",
            "flock",
        ] {
            assert!(parse_accept_mutex(ok).is_ok(), "{ok}");
        }
        let e = parse_accept_mutex("spinlock").unwrap_err().to_string();
        assert!(e.starts_with("WSGIAcceptMutex: "), "{e}");
    }
}
