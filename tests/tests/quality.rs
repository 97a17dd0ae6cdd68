//! Quality of the integer model against the float reference (figures in README).

use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_quant::eval::evaluate;
use oracle_quant::reference::FloatLlama;
use oracle_tests::{fixtures, LLAMA_FIXTURES};

#[test]
fn w8_keeps_the_float_greedy_text_for_100_tokens() {
    let fixture = LLAMA_FIXTURES[0];
    let float = fixture.float_model();
    let want = FloatLlama::new(&float).generate_greedy(&[1], 256);
    let bytes = fixture.model_file(QType::Q8);
    let model = Model::load(&bytes).unwrap();
    let request = Request::text(b"", 256, SamplingParams::GREEDY);
    let got = model.generate(Exec::default(), &request, |_| {}).unwrap();
    let same = got
        .tokens
        .iter()
        .zip(&want)
        .take_while(|(a, b)| a == b)
        .count();
    eprintln!(
        "W8 stories260K greedy: identical to float for {same} tokens (of {})",
        want.len()
    );
    assert!(same >= 100, "identical for only {same} tokens");
}

#[test]
fn eval_on_float_sampled_text_meets_targets() {
    let fixture = LLAMA_FIXTURES[0];
    let float = fixture.float_model();
    let text = std::fs::read(fixtures().join("eval/stories260K-sample.txt")).unwrap();
    for (qtype, max_ppl_diff, min_top1) in [(QType::Q8, 0.02, 0.98), (QType::Q4, 0.08, 0.80)] {
        let bytes = fixture.model_file(qtype);
        let model = Model::load(&bytes).unwrap();
        let r = evaluate(&model, &float, &text, usize::MAX).unwrap();
        eprintln!("{}: {}", qtype.name(), r.table());
        assert!(r.tokens > 1500, "evaluated {} tokens", r.tokens);
        assert!(
            r.ppl_rel_diff.abs() <= max_ppl_diff,
            "{} ppl diff {}",
            qtype.name(),
            r.ppl_rel_diff
        );
        assert!(
            r.top1_agreement >= min_top1,
            "{} top-1 {}",
            qtype.name(),
            r.top1_agreement
        );
    }
}
