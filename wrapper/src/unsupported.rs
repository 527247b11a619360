//! mod_wsgi-express 4 options that mod_wsgi-express 6.1 no longer has.
//!
//! mod_wsgi-express 6.1.1 rejects them as unknown (`no such option:
//! --with-newrelic`, exit status 2); rwsgi-express rejects them too, with a
//! message saying what replaced them rather than clap's bare "unexpected
//! argument". The scan runs on the raw arguments before clap.

use std::ffi::OsString;

/// Why the New Relic options are refused; printed in parentheses.
const NEWRELIC: &str = "mod_wsgi-express 6.1 has no New Relic options either; \
     start the agent in the WSGI script (newrelic.agent.initialize(), \
     newrelic.agent.WSGIApplicationWrapper) or with NEW_RELIC_CONFIG_FILE in --envvars-script";

/// Every refused option (long name without `--`) with its reason.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("with-newrelic", NEWRELIC),
    ("with-newrelic-agent", NEWRELIC),
    ("with-newrelic-platform", NEWRELIC),
    ("newrelic-config-file", NEWRELIC),
    ("newrelic-environment", NEWRELIC),
];

/// The reason an option (long name without `--`) is refused, or `None` if it
/// is not in [`UNSUPPORTED`].
pub fn reason(name: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

/// Scans raw arguments (without the program name) for a refused option.
///
/// Input: the arguments as given; `values_of(name)` returns how many values
/// a *supported* long option `--name` takes (0 for flags, `None` if unknown),
/// so that an option's value is never mistaken for an option. Scanning stops
/// at `--`. `--name=value` is recognised. Output: the message for the first
/// refused option, e.g. `--with-newrelic is not supported (mod_wsgi-express
/// 6.1 has no ...)`, or `None`.
pub fn find_refused(
    args: &[OsString],
    values_of: impl Fn(&str) -> Option<usize>,
) -> Option<String> {
    let mut i = 0;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            i += 1;
            continue;
        };
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if let Some(why) = reason(name) {
                return Some(format!("--{name} is not supported ({why})"));
            }
            if !inline_value {
                i += values_of(name).unwrap_or(0);
            }
        }
        i += 1;
    }
    None
}

/// [`find_refused`] with the value counts of the clap definition of the
/// subcommand named by the first non-option argument (the global options
/// take no values).
pub fn find_refused_for_cli(args: &[OsString]) -> Option<String> {
    use clap::CommandFactory;
    let cli = crate::cli::Cli::command();
    let sub_pos = args
        .iter()
        .position(|a| !a.to_string_lossy().starts_with('-'))?;
    let sub = cli.find_subcommand(args[sub_pos].to_str()?)?;
    let counts = |name: &str| {
        sub.get_arguments()
            .find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })
            .map(|a| {
                if a.get_action().takes_values() {
                    a.get_num_args().map_or(1, |r| r.min_values())
                } else {
                    0
                }
            })
    };
    find_refused(&args[sub_pos + 1..], counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn service_options_are_not_refused() {
        for opt in [
            "--service-script",
            "--service-user",
            "--service-group",
            "--service-log-file",
        ] {
            assert_eq!(
                find_refused_for_cli(&os(&["start-server", "app.wsgi", opt, "x", "y"])),
                None,
                "{opt}"
            );
        }
    }

    #[test]
    fn refuses_inline_value_and_flags() {
        let msg = find_refused_for_cli(&os(&["setup-server", "--newrelic-config-file=x"]));
        assert!(msg
            .unwrap()
            .starts_with("--newrelic-config-file is not supported (mod_wsgi-express 6.1 has no"));
        let msg = find_refused_for_cli(&os(&["setup-server", "--with-newrelic", "a.wsgi"]));
        assert!(msg.unwrap().starts_with("--with-newrelic is not supported"));
        assert!(
            find_refused_for_cli(&os(&["start-server", "--with-newrelic-agent", "x"])).is_some()
        );
    }

    #[test]
    fn implemented_daemon_options_are_not_refused() {
        for opt in [
            "queue-timeout",
            "startup-timeout",
            "interrupt-timeout",
            "deadlock-timeout",
            "eviction-timeout",
            "inactivity-timeout",
            "restart-interval",
            "cpu-time-limit",
            "daemon-backlog",
            "header-buffer-size",
            "response-buffer-size",
            "response-socket-timeout",
            "send-buffer-size",
            "receive-buffer-size",
            "socket-prefix",
            "process-group",
            "python-eggs",
            "ignore-activity",
            "reload-on-changes",
            "process-name",
            "initial-workers",
            "minimum-spare-workers",
            "maximum-spare-workers",
            "https-port",
            "ssl-port",
            "ssl-certificate-file",
            "ssl-certificate-key-file",
            "ssl-certificate",
            "ssl-ca-certificate-file",
            "ssl-verify-client",
            "ssl-certificate-chain-file",
            "ssl-environment",
            "https-only",
            "hsts-policy",
            "http2",
            "server-name",
            "server-alias",
            "allow-localhost",
            "setenv",
            "passenv",
            "envvars-script",
            "rewrite-rules",
            "proxy-mount-point",
            "proxy-url-alias",
            "proxy-virtual-host",
            "proxy-timeout",
            "trust-proxy-header",
            "trust-proxy",
            "server-status",
            "startup-log",
            "startup-log-name",
            "error-log-format",
            "rotate-logs",
            "max-log-size",
            "rotatelogs-executable",
            "directory-listing",
            "allow-override",
            "error-document",
            "error-override",
            "compress-responses",
            "enable-sendfile",
            "shell-executable",
            "with-cgi",
            "switch-interval",
            "python-warnings",
            "response-flush-delay",
            "orphan-interpreter",
            "verbose-debugging",
            "add-handler",
            "telemetry-service",
            "enable-telemetry",
            "telemetry-ui-port",
            "telemetry-interval",
            "telemetry-options",
            "slow-requests",
            "debug-mode",
            "enable-debugger",
            "debugger-startup",
            "enable-coverage",
            "coverage-directory",
            "enable-profiler",
            "profiler-directory",
            "enable-recorder",
            "recorder-directory",
            "enable-gdb",
            "gdb-executable",
            "with-php5",
            "enable-docs",
            "free-threading",
        ] {
            assert_eq!(reason(opt), None, "--{opt}");
        }
    }

    #[test]
    fn option_values_and_terminator_are_not_scanned() {
        // The value of --python-path happens to look like a refused option.
        let args = os(&[
            "setup-server",
            "--python-path",
            "--with-newrelic",
            "app.wsgi",
        ]);
        assert_eq!(find_refused_for_cli(&args), None);
        // Nor that of a daemon option.
        let args = os(&[
            "setup-server",
            "--ignore-activity",
            "--newrelic-environment",
            "app.wsgi",
        ]);
        assert_eq!(find_refused_for_cli(&args), None);
        // Both values of --url-alias and --setenv are skipped.
        let args = os(&[
            "setup-server",
            "--url-alias",
            "/x",
            "--with-newrelic",
            "app.wsgi",
        ]);
        assert_eq!(find_refused_for_cli(&args), None);
        let args = os(&[
            "setup-server",
            "--setenv",
            "K",
            "--with-newrelic",
            "app.wsgi",
        ]);
        assert_eq!(find_refused_for_cli(&args), None);
        let args = os(&["setup-server", "--", "--with-newrelic"]);
        assert_eq!(find_refused_for_cli(&args), None);
    }

    #[test]
    fn supported_options_pass() {
        let args = os(&[
            "start-server",
            "app.wsgi",
            "--port",
            "8080",
            "--embedded-mode",
            "--log-to-terminal",
        ]);
        assert_eq!(find_refused_for_cli(&args), None);
    }

    #[test]
    fn no_refused_option_is_also_declared_to_clap() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                if let Some(long) = arg.get_long() {
                    assert!(
                        reason(long).is_none(),
                        "--{long} is both supported and refused"
                    );
                }
            }
        }
    }
}
