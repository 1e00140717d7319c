"""Loihi fixed-point conversion: ranges, exactness, and errors naming the layer."""

from __future__ import annotations

import numpy as np
import pytest

from imsnn_lava.errors import FixedPointError
from imsnn_lava.ir import fixed_point as fp


def test_decay_registers_match_lava_conventions():
    # du = 1 (no current memory) is Lava's du register 4095 (effective 4096 with ds_offset)
    assert fp.decay_to_int(1.0, fp.DU_OFFSET) == 4095
    assert fp.decay_to_int(0.1, fp.DV_OFFSET) == 410
    assert fp.int_to_decay(4095, fp.DU_OFFSET) == 1.0
    with pytest.raises(FixedPointError, match="dv"):
        fp.decay_to_int(1.5, fp.DV_OFFSET, "dv")


def test_decay_rounds_toward_zero_like_lava():
    x = np.array([1000, -1000, 7, -7, 0])
    # (4096 - 410) / 4096 = 0.89990..., truncated toward zero
    np.testing.assert_array_equal(fp.decay_int(x, 410), [899, -899, 6, -6, 0])


def test_quantized_table_is_even_mantissas_with_bounded_error():
    rng = np.random.default_rng(0)
    table = rng.normal(0, 0.3, (5, 20, 30)) * np.array([1, 0.1, 0.01, 2, 0.5])[:, None, None]
    scale = fp.choose_scale(table, 1.0, 12, "L")
    q = fp.quantize_table(table, scale, "L")
    assert q.mant.dtype == np.int16 and np.all(q.mant % 2 == 0)
    assert np.abs(q.mant).max() <= fp.WEIGHT_MANT_MAX
    assert q.exp.min() >= fp.WEIGHT_EXP_MIN and q.exp.max() <= fp.WEIGHT_EXP_MAX
    back = fp.int_to_weights(q, scale)
    step = (2.0 ** q.exp.astype(float) * fp.WEIGHT_MANT_STEP / scale)[:, None, None]
    assert np.all(np.abs(back - table) <= step / 2 + 1e-12)
    # each bin uses the smallest exponent that fits: small bins keep their precision
    assert q.exp[2] <= q.exp[0] <= q.exp[3]


def test_scale_keeps_worst_case_input_inside_24_bit_current():
    rng = np.random.default_rng(1)
    table = np.abs(rng.normal(0, 0.5, (3, 10, 800)))
    scale = fp.choose_scale(table, 1.0, 16, "L")
    worst = np.abs(fp.quantize_table(table, scale, "L").weights_int()).max(0).sum(-1).max()
    assert (worst << fp.ACT_SHIFT) < fp.UV_LIMIT


def test_unrepresentable_values_name_the_layer():
    with pytest.raises(FixedPointError, match="layer big"):
        fp.quantize_table(np.full((1, 2, 2), 1e6), 4096, "big")
    with pytest.raises(FixedPointError, match="layer nan"):
        fp.quantize_table(np.array([[[np.nan]]]), 1, "nan")
    with pytest.raises(FixedPointError, match="layer hot"):
        fp.choose_scale(np.full((1, 1, 4), 1e9), 1.0, 12, "hot")
    with pytest.raises(FixedPointError, match="layer t"):
        fp.threshold_to_int(1e9, 4096, "t")


def test_current_wraps_and_voltage_saturates_as_lava():
    big = fp.UV_LIMIT + 5
    np.testing.assert_array_equal(fp.wrap_u(np.array([big, -big, 5])), [5 - fp.UV_LIMIT,
                                                                         fp.UV_LIMIT - 5, 5])
    np.testing.assert_array_equal(fp.clip_v(np.array([big, -big])),
                                  [fp.UV_LIMIT - 1, -fp.UV_LIMIT + 1])
