//! Parsing speed: a generated 10,000-instruction Containerfile with
//! heredocs and line continuations, through the raw parser and the full
//! typed parse. Target: under 50 ms for the full parse.
//!
//! Measured twice: wall time, and the thread's CPU time, which stays
//! meaningful on a shared machine where wall time includes waiting for a core.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rbuild::containerfile::{parse, parse_ast};

/// CPU time of the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`).
struct ThreadCpu;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

/// 10,000 instructions over 20 stages, a realistic mix.
fn generate() -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine:3.20\n");
    let mut n = 1;
    let mut stage = 0;
    while n < 10_000 {
        if n % 500 == 1 {
            s.push_str(&format!(
                "FROM --platform=$BUILDPLATFORM $BASE AS stage{stage}\n"
            ));
            stage += 1;
            n += 1;
            continue;
        }
        match n % 10 {
            0 => s.push_str(&format!(
                "RUN --mount=type=cache,target=/var/cache/apk \\\n    apk add --no-cache pkg{n} \\\n    # a comment inside\n    && echo done{n}\n"
            )),
            1 => s.push_str(&format!("COPY --chown=1000:1000 <<EOF /etc/app/{n}.conf\nkey={n}\nother=value\nEOF\n")),
            2 => s.push_str(&format!("RUN <<-SCRIPT\n\tset -e\n\techo {n}\n\tSCRIPT\n")),
            3 => s.push_str(&format!("ENV VAR{n}=\"value {n}\" OTHER{n}=${{VAR{n}:-x}}\n")),
            4 => s.push_str(&format!("LABEL org.example.n{n}=\"{n}\"\n")),
            5 => s.push_str(&format!("WORKDIR /app/{n}\n")),
            6 => s.push_str("CMD [\"/bin/sh\", \"-c\", \"echo hi\"]\n"),
            7 => s.push_str(&format!("ARG A{n}=1 B{n}\n")),
            8 => s.push_str(&format!("COPY --from=stage0 --link src/{n} /dst/{n}/\n")),
            _ => s.push_str("HEALTHCHECK --interval=30s --timeout=5s CMD curl -f http://localhost/ || exit 1\n"),
        }
        n += 1;
    }
    s
}

fn bench_wall(c: &mut Criterion) {
    bench(c, "parse_10k_instructions_wall");
}

fn bench_cpu(c: &mut Criterion<ThreadCpu>) {
    bench(c, "parse_10k_instructions_cpu");
}

fn bench<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let text = generate();
    let count = parse_ast(&text, "Containerfile")
        .expect("generated file parses")
        .nodes
        .len();
    assert_eq!(count, 10_000, "the generated file has 10,000 instructions");
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("raw_ast", |b| {
        b.iter(|| parse_ast(&text, "Containerfile").unwrap())
    });
    g.bench_function("typed", |b| {
        b.iter(|| parse(&text, "Containerfile").unwrap())
    });
    g.finish();
}

criterion_group!(wall, bench_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_cpu
}
criterion_main!(wall, cpu);
