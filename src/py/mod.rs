//! The PyO3 layer: extracts arrays with the GIL held, runs kernels with it released, returns new
//! arrays. No computation lives here.

mod args;
mod arrays;
mod attention;
mod axes;
mod decode;
mod errors;
mod linalg;
mod linear;
mod moe;
mod papers;
mod pool;
mod runtime;
mod softmax;
mod variants;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(runtime::isa, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::supported_isas, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::cpu_info, m)?)?;
    m.add_function(wrap_pyfunction!(softmax::softmax, m)?)?;
    m.add_function(wrap_pyfunction!(softmax::log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(softmax::logsumexp, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::pinv, m)?)?;
    m.add_function(wrap_pyfunction!(linalg::pinv_backward, m)?)?;
    m.add_class::<linalg::PyPinvInfo>()?;
    m.add_function(wrap_pyfunction!(attention::soft_attention, m)?)?;
    m.add_function(wrap_pyfunction!(attention::softmax_attention, m)?)?;
    m.add_function(wrap_pyfunction!(linear::linear_attention, m)?)?;
    m.add_function(wrap_pyfunction!(decode::decode_attention, m)?)?;
    m.add_function(wrap_pyfunction!(papers::inline_attention, m)?)?;
    m.add_function(wrap_pyfunction!(papers::rala_attention, m)?)?;
    m.add_function(wrap_pyfunction!(papers::agent_attention, m)?)?;
    m.add_function(wrap_pyfunction!(papers::agent_pool, m)?)?;
    m.add_function(wrap_pyfunction!(papers::tensor_attention, m)?)?;
    m.add_function(wrap_pyfunction!(linear::causal_dot_product, m)?)?;
    m.add_function(wrap_pyfunction!(linear::hedgehog_feature_map, m)?)?;
    m.add_function(wrap_pyfunction!(variants::power_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(variants::softmax_regression, m)?)?;
    m.add_function(wrap_pyfunction!(moe::top_k_gating, m)?)?;
    m.add_function(wrap_pyfunction!(moe::noisy_logits, m)?)?;
    m.add_function(wrap_pyfunction!(moe::moe_dispatch, m)?)?;
    m.add_function(wrap_pyfunction!(moe::moe_gather, m)?)?;
    m.add_function(wrap_pyfunction!(moe::moe_combine, m)?)?;
    m.add_function(wrap_pyfunction!(moe::load_balancing_loss, m)?)?;
    m.add_function(wrap_pyfunction!(moe::router_z_loss, m)?)?;
    Ok(())
}
