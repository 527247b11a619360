//! `<WSGIInterpreterOptions [process-group=NAME] [application-group=NAME]>`
//! (mod_wsgi 6): per-interpreter settings scoped by selectors. Pure parsing
//! and matching; the module walks Apache's directive tree and applies the
//! settings when it sets up an interpreter.

use crate::directives::{parse_on_off, split_words, DirectiveError};

const D: &str = "<WSGIInterpreterOptions>";

fn err(message: impl Into<String>) -> DirectiveError {
    DirectiveError {
        directive: D,
        message: message.into(),
    }
}

/// One container: its selectors (`None`: any) and its settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterpreterOptions {
    /// `process-group=`: a `WSGIDaemonProcess` name, `""` for embedded mode.
    pub process_group: Option<String>,
    /// `application-group=`: the resolved group, `""` (`%{GLOBAL}`) the
    /// main interpreter.
    pub application_group: Option<String>,
    /// `WSGIPythonPath` inside: directories added with `site.addsitedir`.
    pub python_path: Vec<String>,
    /// `WSGISwitchInterval` inside, seconds.
    pub switch_interval: Option<f64>,
    /// `WSGIPerInterpreterGIL` inside.
    pub per_interpreter_gil: Option<bool>,
    /// `WSGIFreeThreading` inside.
    pub free_threading: Option<bool>,
}

impl InterpreterOptions {
    /// Parses the opening line's arguments (`process-group=a
    /// application-group=b>`, the `>` optional once split off). Errors: an
    /// unknown selector, one given twice, a missing `=`.
    pub fn parse_selectors(args: &str) -> Result<InterpreterOptions, DirectiveError> {
        let args = args.trim();
        let args = args
            .strip_suffix('>')
            .ok_or_else(|| err("directive missing closing '>'"))?;
        let mut o = InterpreterOptions::default();
        for word in split_words(D, args)? {
            let (key, value) = word.split_once('=').ok_or_else(|| {
                err(format!(
                    "argument {word:?} is not key=value (process-group= or application-group=)"
                ))
            })?;
            let value = if value == "%{GLOBAL}" { "" } else { value };
            let slot = match key {
                "process-group" => &mut o.process_group,
                "application-group" => &mut o.application_group,
                _ => {
                    return Err(err(format!(
                        "unknown selector {key:?} (process-group= or application-group=)"
                    )))
                }
            };
            if slot.is_some() {
                return Err(err(format!("{key} given more than once")));
            }
            *slot = Some(value.to_string());
        }
        Ok(o)
    }

    /// Applies one directive of the container's body (`name`, its
    /// arguments). Errors name it and why; a directive that has no
    /// per-interpreter meaning is refused.
    pub fn set(&mut self, name: &str, args: &str) -> Result<(), DirectiveError> {
        let value = args.trim();
        if name.eq_ignore_ascii_case("WSGIPythonPath") {
            self.python_path
                .extend(crate::directives::split_python_path(value));
        } else if name.eq_ignore_ascii_case("WSGISwitchInterval") {
            self.switch_interval = Some(crate::options::parse_switch_interval(value)?);
        } else if name.eq_ignore_ascii_case("WSGIPerInterpreterGIL") {
            self.per_interpreter_gil = Some(parse_on_off("WSGIPerInterpreterGIL", value)?);
        } else if name.eq_ignore_ascii_case("WSGIFreeThreading") {
            self.free_threading = Some(parse_on_off("WSGIFreeThreading", value)?);
        } else {
            return Err(err(format!(
                "{name} is not allowed inside it (only WSGIPythonPath, WSGISwitchInterval, WSGIPerInterpreterGIL and WSGIFreeThreading)"
            )));
        }
        Ok(())
    }

    /// Whether this container applies to the interpreter of application
    /// group `application_group` (`""`: main) in process group
    /// `process_group` (`""`: embedded mode).
    pub fn matches(&self, process_group: &str, application_group: &str) -> bool {
        self.process_group
            .as_deref()
            .is_none_or(|p| p == process_group)
            && self
                .application_group
                .as_deref()
                .is_none_or(|a| a == application_group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let o = InterpreterOptions::parse_selectors("process-group=d1 application-group=app1>")
            .unwrap();
        assert_eq!(o.process_group.as_deref(), Some("d1"));
        assert_eq!(o.application_group.as_deref(), Some("app1"));
        let any = InterpreterOptions::parse_selectors(">").unwrap();
        assert!(any.matches("x", "y") && any.matches("", ""));
        let g = InterpreterOptions::parse_selectors("application-group=%{GLOBAL}>").unwrap();
        assert!(g.matches("d", "") && !g.matches("d", "app"));
        assert!(o.matches("d1", "app1") && !o.matches("d2", "app1") && !o.matches("d1", ""));
    }

    #[test]
    fn selector_errors() {
        for (args, needle) in [
            ("process-group=a", "missing closing '>'"),
            ("colour=red>", "unknown selector \"colour\""),
            (
                "process-group=a process-group=b>",
                "process-group given more than once",
            ),
            (
                "application-group=a application-group=b>",
                "application-group given more than once",
            ),
            ("bare>", "is not key=value"),
        ] {
            let e = InterpreterOptions::parse_selectors(args).unwrap_err();
            assert!(e.message.contains(needle), "{args}: {}", e.message);
        }
    }

    #[test]
    fn body() {
        let mut o = InterpreterOptions::default();
        o.set("WSGIPythonPath", "/a:/b").unwrap();
        o.set("wsgiswitchinterval", "0.002").unwrap();
        o.set("WSGIPerInterpreterGIL", "Off").unwrap();
        assert_eq!(o.python_path, vec!["/a", "/b"]);
        assert_eq!(o.switch_interval, Some(0.002));
        assert_eq!(o.per_interpreter_gil, Some(false));
        assert!(o.set("WSGISwitchInterval", "0").is_err());
        let e = o.set("WSGIScriptAlias", "/ /x").unwrap_err();
        assert!(e.message.contains("not allowed inside"), "{}", e.message);
    }
}
