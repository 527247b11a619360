//! Reading the segment into a [`Snapshot`]: the counters summed over the
//! shards, the live processes of each group (with their RSS and CPU time
//! from `/proc`), the requests their threads serve, and the recent errors.

use super::shm::{self, ProcSlot, Segment, MAX_APP_GROUPS, MAX_GROUPS, SHARDS};
use rwsgi_core::observe::labels::{METHODS, RESTART_CAUSES, STATUS_CLASSES};
use rwsgi_core::observe::snapshot::{
    ErrorEntry, Group, Histogram, Process, RequestCount, Snapshot, ThreadRequest,
};
use std::sync::atomic::Ordering::*;

fn signal_name(n: i32) -> String {
    nix::sys::signal::Signal::try_from(n)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal-{n}"))
}

fn exit_text(code: u32) -> Option<String> {
    match code {
        0 => None,
        c if c >= 100 => Some(signal_name(c as i32 - 100)),
        c => RESTART_CAUSES.get(c as usize - 1).map(|s| s.to_string()),
    }
}

fn add(h: &mut Histogram, src: &shm::Histogram) {
    for (d, s) in h.counts.iter_mut().zip(&src.counts) {
        *d += s.load(Relaxed);
    }
    h.sum_us += src.sum_us.load(Relaxed);
}

/// RSS (bytes) and CPU time (s) of `pid` from `/proc/PID/stat`, zeros when
/// it cannot be read (proc(5): fields 14, 15 utime/stime in clock ticks, 24
/// rss in pages).
fn proc_usage(pid: i32) -> (u64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0, 0.0);
    };
    // The fields after the command name, which may hold spaces: ") S ppid ...".
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return (0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf only reads configuration values.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
        )
    };
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let cpu = (num(14 - 3) + num(15 - 3)) as f64 / tick;
    (num(24 - 3) * page, cpu)
}

fn process(slot: &ProcSlot, daemon: bool, now_us: u64) -> Option<Process> {
    let pid = slot.pid.load(Acquire);
    if !shm::alive(pid) {
        return None;
    }
    let mut current = Vec::new();
    for (i, t) in slot.thread.iter().enumerate() {
        for _ in 0..4 {
            let s1 = t.seq.load(Acquire);
            if s1 % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let start = t.start_us.load(Acquire);
            if start == 0 {
                break;
            }
            let req = ThreadRequest {
                thread: i as u32,
                method: t.method.get(),
                path: t.path.get(),
                client: t.client.get(),
                start_us: start.min(now_us),
            };
            if t.seq.load(Acquire) == s1 && t.start_us.load(Acquire) == start {
                current.push(req);
                break;
            }
        }
    }
    let (rss_bytes, cpu_seconds) = if daemon { proc_usage(pid) } else { (0, 0.0) };
    Some(Process {
        index: slot.index.load(Relaxed),
        pid,
        uid: slot.uid.load(Relaxed),
        start_us: slot.start_us.load(Relaxed),
        requests: slot.requests.load(Relaxed),
        rss_bytes,
        cpu_seconds,
        threads: slot.threads.load(Relaxed),
        busy: slot.busy.load(Relaxed).max(0) as u32,
        restarts: slot.restarts.load(Relaxed),
        last_exit: exit_text(slot.last_exit.load(Relaxed)),
        sub_interpreters: slot.sub_interpreters.load(Relaxed),
        current,
    })
}

fn errors(seg: &Segment) -> Vec<ErrorEntry> {
    let next = seg.next_error.load(Acquire);
    let first = next.saturating_sub(shm::ERRORS as u64);
    (first..next)
        .filter_map(|n| {
            let e = &seg.errors[(n % shm::ERRORS as u64) as usize];
            let s1 = e.seq.load(Acquire);
            if s1 % 2 == 1 || s1 == 0 {
                return None;
            }
            let message = e.message.get();
            let entry = ErrorEntry {
                time_us: e.time_us.load(Relaxed),
                pid: e.pid.load(Relaxed),
                id: message.get(..9).unwrap_or("").to_string(),
                message,
            };
            (e.seq.load(Acquire) == s1).then_some(entry)
        })
        .collect()
}

/// The whole server now, or `None` before the Apache parent made the
/// segment.
pub fn snapshot() -> Option<Snapshot> {
    let seg = shm::get()?;
    let now_us = crate::wsgi::metrics::wall_us();
    let names = Segment::names(&seg.groups);
    let apps = Segment::names(&seg.apps);
    let daemon_mask = seg.daemon_groups.load(Relaxed);
    let mut groups = Vec::new();
    for (g, name) in names.iter().enumerate().take(MAX_GROUPS) {
        let Some(name) = name else { continue };
        let daemon = daemon_mask & (1 << g) != 0;
        // A group of an earlier configuration that no process serves any more.
        if g != 0 && !daemon {
            continue;
        }
        let mut grp = Group {
            name: name.clone(),
            daemon,
            ..Default::default()
        };
        for (a, app) in apps.iter().enumerate().take(MAX_APP_GROUPS) {
            for m in 0..METHODS.len() {
                for c in 0..STATUS_CLASSES.len() {
                    let n: u64 = (0..SHARDS)
                        .map(|s| seg.shards[s][g].requests[a][m][c].load(Relaxed))
                        .sum();
                    if n > 0 {
                        grp.requests.push(RequestCount {
                            application_group: if a == MAX_APP_GROUPS - 1 {
                                "(other)".into()
                            } else {
                                app.clone().unwrap_or_default()
                            },
                            method: m,
                            status_class: c,
                            count: n,
                        });
                    }
                }
            }
        }
        for s in 0..SHARDS {
            let st = &seg.shards[s][g];
            grp.request_bytes += st.request_bytes.load(Relaxed);
            grp.response_bytes += st.response_bytes.load(Relaxed);
            add(&mut grp.duration, &st.duration);
            add(&mut grp.queue_wait, &st.queue_wait);
            add(&mut grp.first_byte, &st.first_byte);
            grp.in_flight += st.in_flight.load(Relaxed);
            for (d, src) in grp.gc_collections.iter_mut().zip(&st.gc) {
                *d += src.load(Relaxed);
            }
        }
        for (i, cause) in RESTART_CAUSES.iter().enumerate() {
            let n = seg.restarts[g][i].load(Relaxed);
            if n > 0 {
                grp.restarts.push((cause.to_string(), n));
            }
        }
        for (sig, n) in seg.signal_restarts[g].iter().enumerate() {
            let n = n.load(Relaxed);
            if n > 0 {
                grp.restarts.push((signal_name(sig as i32), n));
            }
        }
        let slots: &[ProcSlot] = if daemon {
            &seg.daemon_bank()[..]
        } else {
            &seg.children[..]
        };
        grp.processes = slots
            .iter()
            .filter(|s| s.pid.load(Acquire) != 0 && s.group.load(Relaxed) as usize == g)
            .filter_map(|s| process(s, daemon, now_us))
            .collect();
        grp.processes.sort_by_key(|p| (p.index, p.pid));
        groups.push(grp);
    }
    Some(Snapshot {
        now_us,
        since_us: seg.since_us.load(Relaxed),
        server_pid: seg.server_pid.load(Relaxed),
        groups,
        errors: errors(seg),
    })
}
