//! `frontrun._engine`: the native half of the Python package.

use pyo3::prelude::*;

/// The native module. Its Python face is described in `_engine.pyi`.
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
