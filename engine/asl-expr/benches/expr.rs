//! Parse once, evaluate many times: what one evaluation costs for typical expressions.
//! Run with `cargo bench -p asl-expr`.

use std::hint::black_box;

use asl_expr::{intrinsics, jsonata};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

fn resolve<'a>(input: &'a Value) -> impl Fn(&str) -> Result<Value, asl_expr::ExprError> + 'a {
    move |p: &str| Ok(input.get(p.trim_start_matches("$.")).cloned().unwrap_or(Value::Null))
}

fn benches(c: &mut Criterion) {
    let input = json!({"name": "Ada", "n": 41, "items": (0..100).collect::<Vec<_>>()});

    let format =
        intrinsics::parse("States.Format('Hello {}, you are {}', $.name, States.MathAdd($.n, 1))").expect("parses");
    c.bench_function("intrinsic Format+MathAdd eval (parsed once)", |b| {
        b.iter(|| black_box(format.eval(&resolve(&input)).expect("ok")))
    });
    c.bench_function("intrinsic Format+MathAdd parse", |b| {
        b.iter(|| black_box(intrinsics::parse("States.Format('Hello {}, you are {}', $.name, States.MathAdd($.n, 1))")))
    });
    let partition = intrinsics::parse("States.ArrayPartition($.items, 7)").expect("parses");
    c.bench_function("intrinsic ArrayPartition 100 items", |b| {
        b.iter(|| black_box(partition.eval(&resolve(&input)).expect("ok")))
    });

    let states = json!({"input": input, "context": {"Execution": {"Id": "x"}}});
    let path = jsonata::compile("$states.input.name").expect("compiles");
    c.bench_function("jsonata $states.input.name eval (compiled once)", |b| {
        b.iter(|| black_box(path.eval(&states, &|_| None).expect("ok")))
    });
    let object = jsonata::compile("{'greeting': 'Hello ' & $states.input.name, 'next': $states.input.n + 1, 'v': $v}")
        .expect("compiles");
    c.bench_function("jsonata object constructor eval", |b| {
        b.iter(|| black_box(object.eval(&states, &|_| Some(json!(1))).expect("ok")))
    });
    let part = jsonata::compile("$partition($states.input.items, 7)").expect("compiles");
    c.bench_function("jsonata $partition 100 items", |b| {
        b.iter(|| black_box(part.eval(&states, &|_| None).expect("ok")))
    });
    c.bench_function("jsonata compile", |b| {
        b.iter(|| {
            black_box(jsonata::compile("{'greeting': 'Hello ' & $states.input.name, 'next': $states.input.n + 1}"))
        })
    });
}

criterion_group!(expr, benches);
criterion_main!(expr);
