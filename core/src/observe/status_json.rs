//! The status page's JSON (`/rwsgi-status.json` beside the page): a
//! [`Snapshot`] as the stable document of docs/status.md (`"version": 1`).
//! Times are seconds since the Unix epoch (floats), durations seconds.

use super::labels::{self, BUCKET_BOUNDS, STATUS_CLASSES};
use super::snapshot::{Group, Histogram, Process, Snapshot};
use serde_json::{json, Map, Value};

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

fn histogram(h: &Histogram) -> Value {
    let mut cumulative = 0;
    let buckets: Vec<Value> = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cumulative += c;
            json!({
                "le": BUCKET_BOUNDS.get(i).map_or(Value::String("+Inf".into()), |b| json!(b)),
                "count": cumulative,
            })
        })
        .collect();
    json!({"count": h.count(), "sum_seconds": secs(h.sum_us), "buckets": buckets})
}

fn process(p: &Process, now_us: u64) -> Value {
    let current: Vec<Value> = p
        .current
        .iter()
        .map(|t| {
            json!({
                "thread": t.thread,
                "method": t.method,
                "path": t.path,
                "client": t.client,
                "elapsed_seconds": secs(now_us.saturating_sub(t.start_us)),
            })
        })
        .collect();
    json!({
        "index": p.index,
        "pid": p.pid,
        "uid": p.uid,
        "started": secs(p.start_us),
        "uptime_seconds": secs(now_us.saturating_sub(p.start_us)),
        "requests": p.requests,
        "rss_bytes": p.rss_bytes,
        "cpu_seconds": p.cpu_seconds,
        "threads": p.threads,
        "busy": p.busy,
        "restarts": p.restarts,
        "last_exit": p.last_exit,
        "sub_interpreters": p.sub_interpreters,
        "current": current,
    })
}

fn group(g: &Group, now_us: u64) -> Value {
    let mut statuses = Map::new();
    for (i, c) in STATUS_CLASSES.iter().enumerate() {
        let n: u64 = g
            .requests
            .iter()
            .filter(|r| r.status_class == i)
            .map(|r| r.count)
            .sum();
        statuses.insert((*c).into(), json!(n));
    }
    let restarts: Map<String, Value> = g
        .restarts
        .iter()
        .map(|(c, n)| (c.clone(), json!(n)))
        .collect();
    let (busy, total) = g.threads();
    json!({
        "name": labels::group_label(&g.name),
        "mode": if g.daemon { "daemon" } else { "embedded" },
        "requests": g.total_requests(),
        "statuses": statuses,
        "in_flight": g.in_flight.max(0),
        "threads": {"busy": busy, "idle": total - busy},
        "request_bytes": g.request_bytes,
        "response_bytes": g.response_bytes,
        "duration": histogram(&g.duration),
        "restarts": restarts,
        "processes": g.processes.iter().map(|p| process(p, now_us)).collect::<Vec<_>>(),
    })
}

/// The JSON document of `s` (docs/status.md).
pub fn render(s: &Snapshot) -> String {
    let errors: Vec<Value> = s
        .errors
        .iter()
        .map(|e| json!({"time": secs(e.time_us), "pid": e.pid, "id": e.id, "message": e.message}))
        .collect();
    json!({
        "version": 1,
        "now": secs(s.now_us),
        "since": secs(s.since_us),
        "server_pid": s.server_pid,
        "groups": s.groups.iter().map(|g| group(g, s.now_us)).collect::<Vec<_>>(),
        "errors": errors,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{ErrorEntry, RequestCount, ThreadRequest};
    use super::*;

    #[test]
    fn document_shape() {
        let s = Snapshot {
            now_us: 3_000_000,
            since_us: 1_000_000,
            server_pid: 7,
            groups: vec![Group {
                name: "app".into(),
                daemon: true,
                requests: vec![
                    RequestCount {
                        application_group: String::new(),
                        method: 0,
                        status_class: 1,
                        count: 4,
                    },
                    RequestCount {
                        application_group: String::new(),
                        method: 2,
                        status_class: 4,
                        count: 1,
                    },
                ],
                restarts: vec![("SIGTERM".into(), 1)],
                processes: vec![Process {
                    pid: 42,
                    start_us: 2_000_000,
                    threads: 2,
                    busy: 1,
                    current: vec![ThreadRequest {
                        thread: 1,
                        method: "GET".into(),
                        path: "/slow?x=\"1\"".into(),
                        client: "127.0.0.1".into(),
                        start_us: 2_500_000,
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            errors: vec![ErrorEntry {
                time_us: 2_000_000,
                pid: 42,
                id: "RWSGI0012".into(),
                message: "boom".into(),
            }],
        };
        let v: Value = serde_json::from_str(&render(&s)).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["now"], 3.0);
        let g = &v["groups"][0];
        assert_eq!(g["name"], "app");
        assert_eq!(g["mode"], "daemon");
        assert_eq!(g["requests"], 5);
        assert_eq!(g["statuses"]["2xx"], 4);
        assert_eq!(g["statuses"]["5xx"], 1);
        assert_eq!(g["threads"]["busy"], 1);
        assert_eq!(g["threads"]["idle"], 1);
        assert_eq!(g["restarts"]["SIGTERM"], 1);
        assert_eq!(g["duration"]["buckets"][15]["le"], "+Inf");
        let p = &g["processes"][0];
        assert_eq!(p["pid"], 42);
        assert_eq!(p["uptime_seconds"], 1.0);
        assert_eq!(p["current"][0]["path"], "/slow?x=\"1\"");
        assert_eq!(p["current"][0]["elapsed_seconds"], 0.5);
        assert_eq!(v["errors"][0]["id"], "RWSGI0012");
    }
}
