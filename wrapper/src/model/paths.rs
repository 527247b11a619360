//! What Apache's children must be able to read ([`ServerConfig::paths_children_read`]).

use std::path::{Path, PathBuf};

use super::{Application, ServerConfig};

impl ServerConfig {
    /// The paths Apache's children must be able to read, in the order they
    /// are reported: Python installation directories, the application (the
    /// script, the `.ini` file of a paste application, the directory of a
    /// static one, or the working directory for a module), the working directory,
    /// each `--python-path`, each `--url-alias` path, each `--add-handler`
    /// script, the document root and
    /// the server root (which holds `handler.wsgi`). Duplicates removed.
    pub fn paths_children_read(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut push = |p: &Path| {
            if !out.iter().any(|q| q == p) {
                out.push(p.to_path_buf());
            }
        };
        self.python_dirs.iter().for_each(|p| push(p));
        match &self.app {
            Application::Script { path } => push(path),
            Application::Module { .. } => push(&self.working_directory),
            Application::Paste { config, .. } => push(config),
            Application::Static { directory } => push(directory),
        }
        push(&self.working_directory);
        self.python_paths.iter().for_each(|p| push(p));
        self.url_aliases.iter().for_each(|u| push(&u.path));
        self.content.handlers.iter().for_each(|h| push(&h.script));
        push(&self.document_root);
        push(&self.server_root);
        out
    }
}
