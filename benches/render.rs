//! Renderer speed: the default policy and every bundle, resolve + render + JSON.

use account_connect::domain::Partition;
use account_connect::policy::{render, Permissions, Selection};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    for (name, perms) in [
        ("default", Permissions::Default),
        ("all_bundles", Permissions::everything()),
    ] {
        // What a first request for a selection costs: resolve, render, JSON.
        c.bench_function(&format!("render_{name}"), |b| {
            b.iter(|| {
                let sel = Selection::resolve(Partition::Aws, black_box(&perms)).unwrap();
                let rendered = render(&sel).unwrap();
                black_box(serde_json::to_vec(&rendered).unwrap())
            })
        });
        // The same without the JSON, to tell the two apart.
        c.bench_function(&format!("render_{name}_documents_only"), |b| {
            b.iter(|| black_box(render(&Selection::resolve(Partition::Aws, black_box(&perms)).unwrap()).unwrap()))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
