//! `rwsgi-express`: see the crate documentation of `rwsgi_express` and
//! `docs/express.md`.
//!
//! Exit status: 0 on success, 1 on any error (refused option, invalid value,
//! failure to write or to exec Apache), 2 for command line syntax errors
//! reported by clap. `start-server` does not return: Apache replaces it.
//! `doctor` exits 0 (all checks OK), 1 (warnings) or 2 (failures).

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use rwsgi_express::build_info::BuildInfo;
use rwsgi_express::cli::{Cli, Command, ModuleArgs};
use rwsgi_express::{doctor, module, setup, unsupported};

fn module_paths(args: &ModuleArgs) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let override_path = std::env::var_os("RWSGI_MODULE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let module = module::find_module(
        override_path.as_deref(),
        exe_dir.as_deref(),
        &args.modules_directory,
    )?;
    let virtual_env = std::env::var_os("VIRTUAL_ENV")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let home = module::python_home(
        args.python_home.as_deref(),
        virtual_env.as_deref(),
        &BuildInfo::embedded(),
    )?;
    Ok((module, home))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::SetupServer(args) => {
            doctor::refuse_on_failure(&args, false)?;
            setup::run_server(&args, false)
        }
        Command::StartServer(args) => {
            doctor::refuse_on_failure(&args, true)?;
            setup::run_server(&args, true)
        }
        Command::Doctor(args) => std::process::exit(doctor::run(&args)?.into()),
        Command::ModuleConfig(args) => {
            let (module, home) = module_paths(&args)?;
            print!("{}", module::config_lines(&module, &home)?);
            Ok(())
        }
        Command::InstallModule(args) => {
            let (module, home) = module_paths(&args)?;
            let dest = module::install(&module, &args.modules_directory)?;
            eprintln!(
                "rwsgi-express: installed {} as {}",
                module.display(),
                dest.display()
            );
            print!("{}", module::config_lines(&dest, &home)?);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let Some(message) = unsupported::find_refused_for_cli(&args) {
        eprintln!("rwsgi-express: {message}");
        return ExitCode::from(1);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rwsgi-express: {e:#}");
            ExitCode::from(1)
        }
    }
}
