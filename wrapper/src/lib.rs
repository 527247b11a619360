//! rwsgi-express: a `mod_wsgi-express` compatible launcher for mod_rwsgi.
//!
//! The pipeline is split so that everything but the last step is pure and
//! unit-tested:
//!
//! 1. [`cli`] parses the command line (clap); [`unsupported`] explains the
//!    mod_wsgi-express 4 options that 6.1 dropped, before clap runs.
//! 2. [`model::ServerConfig::build`] turns the options plus facts about the
//!    host ([`model::HostFacts`], [`build_info::BuildInfo`]) into a validated
//!    model with every default resolved ([`daemon_opts`] for daemon mode,
//!    [`https`] for HTTPS and HTTP/2, [`vhost`] for virtual hosts,
//!    [`compat`] for the environment options and what include files written
//!    for mod_wsgi-express rely on, [`logs`], [`content`], [`proxy`] and
//!    [`python_opts`], [`telemetry`] and [`debug`] for the option groups of
//!    those names).
//! 3. [`render`] turns the model into `httpd.conf`, `apachectl`,
//!    `handler.wsgi` and `reloader.py` text (minijinja templates under
//!    `apache/`).
//! 4. [`access`] checks, as the user Apache's children will run as, that
//!    every path the application needs is readable.
//! 5. [`setup`] writes the server root and, for `start-server`, execs Apache.
//!
//! [`module`] locates the mod_rwsgi shared object and implements
//! `module-config` / `install-module`.

#![warn(missing_docs)]

pub mod access;
pub mod auth;
pub mod build_info;
pub mod bundled_docs;
pub mod cli;
pub mod compat;
pub mod content;
pub mod daemon_opts;
pub mod debug;
pub mod doctor;
pub mod https;
pub mod logs;
pub mod model;
pub mod module;
pub mod observe;
pub mod proxy;
pub mod python_opts;
pub mod render;
pub mod service;
pub mod setup;
pub mod telemetry;
pub mod unsupported;
pub mod vhost;
