#!/usr/bin/env python3
"""Generate the .npz test files of the jjt-npy crate (tests/npz.rs).

Run with a Python that has numpy:  python crates/jjt-npy/tests/corpus/gen_npz.py

npz/savez.npz: np.savez with `w` = arange(6, float64).reshape(2, 3) / 4, `params.b` =
arange(3, float32) - 1 and `tok` = array([3, 0, 7], int32). npz/savez_compressed.npz: the same
arrays through np.savez_compressed (deflated members, which the reader refuses).
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
arrays = {
    "w": np.arange(6, dtype=np.float64).reshape(2, 3) / 4,
    "params.b": np.arange(3, dtype=np.float32) - 1,
    "tok": np.array([3, 0, 7], dtype=np.int32),
}
np.savez(os.path.join(HERE, "npz", "savez.npz"), **arrays)
np.savez_compressed(os.path.join(HERE, "npz", "savez_compressed.npz"), **arrays)
