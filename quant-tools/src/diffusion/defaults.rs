//! Serde defaults shared by the diffusers config structs (the values diffusers
//! itself uses when a `config.json` omits a key).

pub(crate) fn default_name() -> String {
    "default".into()
}

pub(crate) fn four() -> usize {
    4
}

pub(crate) fn norm_eps() -> f32 {
    1e-5
}

pub(crate) fn one_f() -> f32 {
    1.0
}

pub(crate) fn positional() -> String {
    "positional".into()
}

pub(crate) fn silu_name() -> String {
    "silu".into()
}

pub(crate) fn thirty_two() -> usize {
    32
}

pub(crate) fn three() -> usize {
    3
}

pub(crate) fn two() -> usize {
    2
}

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn one() -> usize {
    1
}
