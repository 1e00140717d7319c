"""Interoperability with other SNN tools (numpy, h5py and the tools' own file packages only).

- `imsnn_lava.interop.nir`: NIR graphs (`from_nir`, `to_nir`, `load_nir`, `save_nir`).
"""
