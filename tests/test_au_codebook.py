"""The AU codebook tables against docs/method.md §2-3, and the template face."""

import numpy as np
import pytest
import torch

from fer_core import CLASSES
from fer_core.au import (
    AU_NAMES,
    AU_REGIONS,
    HFLIP_PERMUTATION,
    NUM_AUS,
    VARIANTS,
    HalfAxis,
    au_membership,
    expression_aus,
    resolve_ellipses,
    template_landmarks,
)

# docs/method.md §2, typed out again here so that an edit to the codebook cannot pass unnoticed.
DOC_AU_NAMES = (
    "Inner Brow Raiser, Outer Brow Raiser, Brow Lowerer, Upper Lid Raiser, Cheek Raiser, "
    "Lid Tightener, Nose Wrinkler, Upper Lip Raiser, Lip Corner Puller, Dimpler, "
    "Lip Corner Depressor, Chin Raiser, Lip Stretcher, Lip Tightener, Lip Pressor, Lips Part, "
    "Jaw Drop, Eyes Closed, Mouth Stretcher, Lower Lip Depressor"
).split(", ")
DOC_REFERENCE_AUS = {
    "Anger": (2, 3, 5, 7, 11, 13, 14, 15, 16),
    "Disgust": (6, 3, 19, 11, 15, 16),
    "Fear": (0, 1, 2, 3, 12, 15, 16, 18),
    "Happiness": (4, 8, 15),
    "Sadness": (0, 2, 4, 10, 11),
    "Surprise": (0, 1, 3, 16, 18),
    "Neutral": (),
}


def test_au_names_match_method_doc():
    assert NUM_AUS == 20
    assert list(AU_NAMES) == DOC_AU_NAMES


def test_reference_variant_matches_method_doc():
    table = expression_aus("reference")
    assert {CLASSES[c]: aus for c, aus in enumerate(table)} == DOC_REFERENCE_AUS
    assert expression_aus() == table  # reference is the default


def test_paper_variant_differs_only_in_disgust_lid_to_lip():
    ref, paper = expression_aus("reference"), expression_aus("paper")
    differing = [CLASSES[c] for c in range(len(CLASSES)) if ref[c] != paper[c]]
    assert differing == ["Disgust"]
    d = CLASSES.index("Disgust")
    assert paper[d] == (6, 7, 19, 11, 15, 16)
    assert AU_NAMES[3] == "Upper Lid Raiser" and AU_NAMES[7] == "Upper Lip Raiser"


def test_generic_variant_uses_all_aus_for_every_class_including_neutral():
    generic = expression_aus("generic")
    assert len(generic) == len(CLASSES)
    assert all(aus == tuple(range(20)) for aus in generic)


def test_variant_names_and_unknown_variant_error_lists_valid_ones():
    assert set(VARIANTS) == {"reference", "paper", "generic"}
    with pytest.raises(ValueError, match="reference, paper, generic"):
        expression_aus("papr")
    with pytest.raises(TypeError):
        VARIANTS["mine"] = ()  # the table is read-only


def test_membership_matrix_agrees_with_sets():
    m = au_membership("paper")
    assert m.shape == (7, 20) and m.dtype == bool
    for c, aus in enumerate(expression_aus("paper")):
        assert set(np.flatnonzero(m[c])) == set(aus)
    assert not m[0].any()


def _expected_regions(lm: np.ndarray, height: int, width: int) -> list[list[tuple]]:
    """docs/method.md §3 written out directly: per AU, (cx, cy, rx, ry) of each ellipse."""
    x, y = lm[:, 0].astype(float), lm[:, 1].astype(float)
    sx, sy = width / 224, height / 224

    def fixed(cx, cy, rx, ry):
        return (cx, cy, rx * sx, ry * sy)

    def spanned(xa, xb, ya, yb, minimum, extra_y=0.0):
        return (
            (x[xa] + x[xb]) / 2,
            (y[ya] + y[yb]) / 2,
            max(abs(x[xb] - x[xa]) / 2, minimum * sx),
            max(abs(y[yb] - y[ya]) / 2 + extra_y * sy, minimum * sy),
        )

    eyes = [spanned(36, 39, 38, 41, 5), spanned(42, 45, 44, 47, 5)]
    tall_eyes = [spanned(36, 39, 38, 41, 5, 10), spanned(42, 45, 44, 47, 5, 10)]
    mouth = [spanned(48, 54, 51, 57, 5)]
    corners = [fixed(x[48], y[48], 20, 20), fixed(x[54], y[54], 20, 20)]
    return [
        [fixed(x[20], y[20], 28, 22), fixed(x[23], y[23], 28, 22)],
        [fixed(x[18], y[18], 28, 22), fixed(x[25], y[25], 28, 22)],
        [spanned(19, 24, 19, 24, 10)],
        eyes,
        [fixed(x[41], y[41] + 37 * sy, 22, 22), fixed(x[46], y[46] + 37 * sy, 22, 22)],
        tall_eyes,
        [fixed(x[31], y[29], 20, 20), fixed(x[35], y[29], 20, 20)],
        [fixed(x[48], y[50], 20, 20), fixed(x[52], y[54], 20, 20)],
        corners,
        [fixed(x[48] - 20 * sx, y[48], 20, 20), fixed(x[54] + 20 * sx, y[54], 20, 20)],
        corners,
        [spanned(59, 8, 59, 8, 5)],
        [
            fixed((x[48] + x[6]) / 2, (y[48] + y[6]) / 2, 20, 20),
            fixed((x[54] + x[10]) / 2, (y[54] + y[10]) / 2, 20, 20),  # AU 12 fix, docs/method.md §3
        ],
        mouth,
        mouth,
        [fixed(x[51], y[51], 25, 10), fixed(x[57], y[57], 25, 10)],
        mouth,
        tall_eyes,  # AU 17 = AU 5
        mouth,
        [fixed(x[59], y[59], 20, 20), fixed(x[55], y[55], 20, 20)],
    ]


def _faces(height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = template_landmarks((height, width)).astype(float)
    collapsed = np.full((68, 2), 50.0)  # every span is 0, so every minimum is active
    return [base, base + rng.normal(0, 4, base.shape), collapsed]


@pytest.mark.parametrize("size", [(224, 224), (112, 168)])
def test_region_table_matches_protocol_geometry(size):
    height, width = size
    for lm in _faces(height, width):
        expected = _expected_regions(lm, height, width)
        got = [
            [
                (
                    *ell.centre.resolve(lm, (width / 224, height / 224)),
                    ell.rx.resolve(lm, 0, width / 224),
                    ell.ry.resolve(lm, 1, height / 224),
                )
                for ell in region
            ]
            for region in AU_REGIONS
        ]
        assert len(got) == 20
        for au in range(20):
            np.testing.assert_allclose(got[au], expected[au], rtol=1e-9, err_msg=f"AU {au}")


def test_batched_ellipse_gather_matches_protocol_geometry():
    height, width = 112, 168
    faces = _faces(height, width)
    centre, half = resolve_ellipses(torch.tensor(np.stack(faces)), (height, width))
    for b, lm in enumerate(faces):
        for au, ellipses in enumerate(_expected_regions(lm, height, width)):
            for slot in range(2):  # a one-ellipse AU fills its second slot with the same one
                cx, cy, rx, ry = ellipses[min(slot, len(ellipses) - 1)]
                e = au * 2 + slot
                got = [centre[b, 0, e], centre[b, 1, e], half[b, 0, e], half[b, 1, e]]
                np.testing.assert_allclose([float(v) for v in got], [cx, cy, rx, ry], rtol=1e-9)


def test_half_axis_must_have_a_positive_size():
    with pytest.raises(ValueError, match="positive"):
        HalfAxis(span=(1, 2))


def test_template_is_a_plausible_symmetric_frontal_face():
    lm = template_landmarks(224)
    assert lm.shape == (68, 2) and lm.dtype == np.float32 and np.isfinite(lm).all()
    assert ((lm >= 0) & (lm <= 223)).all()
    perm = np.array(HFLIP_PERMUTATION)
    assert (perm[perm] == np.arange(68)).all()  # an involution
    mirrored = np.stack([223 - lm[perm, 0], lm[perm, 1]], axis=1)
    np.testing.assert_allclose(mirrored, lm, atol=1e-4)
    y = lm[:, 1]
    brows, eyes, nose_tip, mouth, chin = y[17:27], y[36:48], y[33], y[48:60], y[8]
    assert brows.max() < eyes.min() < eyes.max() < nose_tip < mouth.min() < mouth.max() < chin
    assert lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0]  # right eye on the image's left
    assert lm[48, 0] < lm[51, 0] < lm[54, 0]


def test_template_scales_per_axis():
    square, wide = template_landmarks(112), template_landmarks((112, 224))
    np.testing.assert_allclose(wide[:, 1], square[:, 1], atol=1e-4)
    np.testing.assert_allclose(wide[:, 0] + 0.5, 2 * (square[:, 0] + 0.5), atol=1e-4)
