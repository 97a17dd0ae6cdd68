//! Float layers to the image model file's tensors: weights as Q8 groups along a
//! row (a conv weight `(cout, cin, k, k)` is `cout` rows of `cin·k·k`), biases and
//! affine parameters as Q16 `i32`.

use oracle_core::format::ModelWriter;
use oracle_core::quant::QType;

use crate::diffusion::ops::{Conv2d, Linear};
use crate::diffusion::Tensor;
use crate::quantize::{quantize_matrix, to_fixed};

/// Add a `(rows, cols)` float matrix as Q8 in groups of `min(group, cols)` (a group
/// of a whole row is one scale per output channel).
pub fn add_matrix(
    w: &mut ModelWriter,
    name: &str,
    data: &[f32],
    rows: usize,
    cols: usize,
    group: usize,
) {
    let group = group.min(cols).max(1);
    let q = quantize_matrix(data, rows, cols, QType::Q8, group);
    w.add_quant(
        name,
        QType::Q8,
        rows as u32,
        cols as u32,
        group as u32,
        q.exp,
        &q.mantissas,
        &q.values,
    );
}

/// Add a float vector as Q16 `i32`, shape `(1, len)`.
pub fn add_q16(w: &mut ModelWriter, name: &str, t: &Tensor) {
    w.add_i32(name, 1, t.data.len() as u32, 16, &to_fixed(&t.data, 16));
}

/// Add `prefix.weight` (Q8) and `prefix.bias` (Q16) of a convolution.
pub fn add_conv(w: &mut ModelWriter, prefix: &str, conv: &Conv2d, group: usize) {
    let s = &conv.weight.shape;
    let (rows, cols) = (s[0], s[1] * s[2] * s[3]);
    add_matrix(
        w,
        &format!("{prefix}.weight"),
        &conv.weight.data,
        rows,
        cols,
        group,
    );
    add_q16(w, &format!("{prefix}.bias"), &conv.bias);
}

/// Add `prefix.weight` (Q8) and, when present, `prefix.bias` (Q16) of a linear layer.
pub fn add_linear(w: &mut ModelWriter, prefix: &str, lin: &Linear, group: usize) {
    let s = &lin.weight.shape;
    add_matrix(
        w,
        &format!("{prefix}.weight"),
        &lin.weight.data,
        s[0],
        s[1],
        group,
    );
    if let Some(b) = &lin.bias {
        add_q16(w, &format!("{prefix}.bias"), b);
    }
}

/// Round to Q30 `i32`, or `None` if outside `[-2, 2)`.
pub fn q30(v: f64) -> Option<i32> {
    let x = (v * (1u64 << 30) as f64).round();
    (x >= f64::from(i32::MIN) && x <= f64::from(i32::MAX)).then_some(x as i32)
}
