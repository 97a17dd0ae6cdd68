//! The hostile model files of `tests/hostile/` fail the per-file check a node
//! runs on its `--models` folder (`oracle_core::footprint::check`, the guest's
//! budget) with the error each was crafted for, and `budget/` files load but are
//! over that budget.

use oracle_core::footprint::{check, CheckError, GUEST_MEMORY_BUDGET};
use oracle_tests::hostile::{committed, Class};

#[test]
fn hostile_model_files_fail_the_model_check_with_their_error() {
    for class in [Class::Model, Class::Image, Class::Budget] {
        for c in committed(class) {
            let bytes = std::fs::read(&c.path).expect("read");
            let err = check(&bytes, GUEST_MEMORY_BUDGET).expect_err(&format!(
                "{}: {}",
                c.path.display(),
                c.what
            ));
            assert_eq!(
                matches!(err, CheckError::OverBudget { .. }),
                class == Class::Budget,
                "{}: {err}",
                c.path.display()
            );
            assert!(
                err.to_string().contains(c.error),
                "{}: {err} lacks {:?}",
                c.path.display(),
                c.error
            );
        }
    }
}

#[test]
fn the_bundled_models_pass_the_model_check() {
    for fixture in oracle_tests::LLAMA_FIXTURES {
        for q in [oracle_core::quant::QType::Q8, oracle_core::quant::QType::Q4] {
            let bytes = fixture.model_file(q);
            let (_, fp) = check(&bytes, GUEST_MEMORY_BUDGET).expect(fixture.name);
            assert!(fp.total() < 64 << 20, "{}: {fp:?}", fixture.name);
        }
    }
    for (name, bytes) in [
        ("ddpm-mnist", oracle_tests::ddpm_mnist_model_file()),
        ("tiny-unet2d", oracle_tests::tiny_unet2d_model_file()),
        ("tiny-sd", oracle_tests::tiny_sd_model_file()),
    ] {
        let (_, fp) = check(&bytes, GUEST_MEMORY_BUDGET).expect(name);
        eprintln!("{name}: {fp:?}");
    }
}
