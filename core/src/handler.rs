//! Arguments of mod_wsgi's `WSGIHandlerScript handler-name script-path
//! [options]`: a named Apache handler answered by a WSGI script.

use crate::directives::{parse_alias_options, split_words, AliasOptions, DirectiveError};

/// One `WSGIHandlerScript`, as written (the module makes the path absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    /// The Apache handler name (`SetHandler`/`AddHandler`) it answers.
    pub name: String,
    /// The WSGI script that answers the requests of the handler.
    pub path: String,
    /// `process-group=`, `application-group=`, `callable-object=` (default
    /// `handle_request`, as mod_wsgi) and `pass-authorization=`.
    pub options: AliasOptions,
}

/// The callable a handler script provides unless `callable-object=` names
/// another: mod_wsgi calls `handle_request(environ, start_response)`.
pub const DEFAULT_CALLABLE: &str = "handle_request";

/// Parses the raw arguments of `WSGIHandlerScript`. Errors (naming the
/// directive): no handler name, no script path, an unknown option or an
/// invalid option value.
pub fn parse_handler_script(args: &str) -> Result<HandlerScript, DirectiveError> {
    let d = "WSGIHandlerScript";
    let err = |m: &str| DirectiveError {
        directive: d,
        message: m.to_string(),
    };
    let words = split_words(d, args)?;
    let mut it = words.iter();
    let name = it
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("name for handler script not supplied"))?;
    let path = it
        .next()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| err("location of handler script not supplied"))?;
    let rest: Vec<String> = it.cloned().collect();
    let options = parse_alias_options(d, &rest)?;
    Ok(HandlerScript {
        name: name.clone(),
        path: path.clone(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_path_and_options() {
        let h = parse_handler_script(
            "my-handler /srv/h.wsgi process-group=g application-group=%{GLOBAL} pass-authorization=On",
        )
        .unwrap();
        assert_eq!(h.name, "my-handler");
        assert_eq!(h.path, "/srv/h.wsgi");
        assert_eq!(h.options.process_group.as_deref(), Some("g"));
        assert_eq!(h.options.application_group.as_deref(), Some("%{GLOBAL}"));
        assert_eq!(h.options.pass_authorization, Some(true));
        assert_eq!(h.options.callable_object, None);
    }

    #[test]
    fn refusals_say_why() {
        let e = parse_handler_script("").unwrap_err();
        assert!(e.to_string().contains("name for handler script"), "{e}");
        let e = parse_handler_script("h").unwrap_err();
        assert!(e.to_string().contains("location of handler script"), "{e}");
        let e = parse_handler_script("h /x.wsgi bogus=1").unwrap_err();
        assert!(e.to_string().contains("unknown option"), "{e}");
        let e = parse_handler_script("h /x.wsgi pass-authorization=Maybe").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("WSGIHandlerScript: pass-authorization"),
            "{e}"
        );
        let e = parse_handler_script("h /x.wsgi callable-object=1x").unwrap_err();
        assert!(e.to_string().contains("not a Python identifier"), "{e}");
    }
}
