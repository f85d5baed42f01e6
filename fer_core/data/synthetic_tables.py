"""The data tables of the synthetic face generator (``synthetic_faces.py`` draws from them).

Everything that decides what a synthetic face looks like, as opposed to how it is drawn, lives
here: the ranges that identity, pose and photometry are drawn from, the facial actions and which
classes use them, the anatomical order that summed actions must keep, the colour ramps and the
painter's order of the strokes. Coordinates are crop-frame units (``x`` right, ``y`` down,
``0..1`` spans the image side); landmark ids are iBUG-68, 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_core import NUM_CLASSES
from fer_core.au import HFLIP_PERMUTATION

MIRROR = np.asarray(HFLIP_PERMUTATION)
"""Landmark id -> id of its left-right mirror."""
MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)
"""Landmarks on the face's vertical axis: an action may move them up or down, never sideways."""
# Image-left landmarks that ``neutral_landmarks`` builds; their mirrors complete the face.
LEFT_LANDMARKS = (*range(8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67)

# name -> (low, high), each drawn uniformly per face. Shape entries are crop-frame units.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "face_w": (0.37, 0.42), "chin_y": (0.90, 0.95), "jaw_sq": (0.6, 1.1),
    "forehead_h": (0.28, 0.33), "eye_y": (0.385, 0.415), "eye_dx": (0.185, 0.215),
    "eye_w": (0.065, 0.085), "eye_h": (0.018, 0.03), "eye_tilt": (-0.01, 0.01),
    "brow_gap": (0.13, 0.165), "brow_out": (0.12, 0.15), "brow_in": (0.11, 0.14),
    "brow_arch": (0.02, 0.045), "brow_t": (0.016, 0.028), "nose_y": (0.63, 0.67),
    "nose_w": (0.07, 0.09), "mouth_y": (0.75, 0.78), "mouth_w": (0.12, 0.15),
    "lip_up": (0.022, 0.034), "lip_lo": (0.03, 0.045), "mouth_curve": (-0.008, 0.008),
    "iris_r": (0.42, 0.55), "gaze": (-0.25, 0.25), "crease": (0.018, 0.03),
    # appearance (0..1 mixing weights)
    "skin": (0.0, 1.0), "warm": (-1.0, 1.0), "hair": (0.0, 1.0), "hair_on": (0.0, 1.0),
    "hair_t": (0.01, 0.06), "lip": (0.0, 1.0), "iris": (0.0, 1.0), "blush": (0.0, 0.2),
    # pose (degrees, scale factor, crop-frame shift)
    "rot": (-8.0, 8.0), "scale": (0.9, 1.03), "tx": (-0.03, 0.03), "ty": (-0.03, 0.03),
    # photometry
    "light_a": (0.0, 2 * np.pi), "light_s": (0.0, 0.5), "bright": (0.75, 1.15),
    "gain_r": (0.9, 1.1), "gain_b": (0.9, 1.1), "noise": (1.0, 7.0),
}  # fmt: skip

MARKS = ("frown", "cheek", "fold", "nose", "chin")
"""Appearance marks an action can add; their strength per face is a weighted intensity."""


@dataclass(frozen=True)
class Action:
    """One facial action: landmark moves plus appearance marks, at intensity 1.

    ``moves`` are ``(landmark ids, dx, dy)`` in crop-frame units for the image-left half and the
    midline; the image-right half is mirrored automatically (``dx`` negated), so expressions are
    symmetric and the table stays half as long. ``aus`` name the codebook AUs whose regions the
    action lives in (the test suite checks the pixels really change only there).
    """

    aus: tuple[int, ...]
    moves: tuple[tuple[tuple[int, ...], float, float], ...] = ()
    marks: tuple[tuple[str, float], ...] = ()


ACTIONS: dict[str, Action] = {
    "brow_raise": Action((0, 1), (((17, 18, 19, 20, 21), 0.0, -0.07),)),
    "inner_brow_raise": Action((0,), (((21,), 0, -0.07), ((20,), 0, -0.053), ((19,), 0, -0.02))),
    "brow_together": Action((2,), (((21,), 0.039, 0.0), ((20,), 0.028, 0.0), ((19,), 0.014, 0.0))),
    "brow_lower": Action(
        (2,), (((21,), 0.0, 0.05), ((20,), 0.0, 0.04), ((19,), 0.0, 0.014)), (("frown", 1.0),)
    ),
    "upper_lid_raise": Action((3,), (((37, 38), 0.0, -0.036),)),
    "lid_tighten": Action((5,), (((40, 41), 0.0, -0.025), ((37, 38), 0.0, 0.007))),
    "cheek_raise": Action((4, 8), marks=(("cheek", 1.0), ("fold", 1.0))),
    "nose_wrinkle": Action((6,), marks=(("nose", 1.0),)),
    "upper_lip_raise": Action(
        (7, 15), (((49,), 0.0, -0.017), ((50, 51), 0.0, -0.028), ((61, 62), 0.0, -0.039),
                  ((60,), 0.0, -0.013))
    ),
    "lip_corner_pull": Action(
        (8,), (((48,), -0.039, -0.05), ((60,), -0.031, -0.043), ((49,), -0.011, -0.025),
               ((59,), -0.015, -0.039), ((61,), -0.004, -0.015), ((67,), -0.008, -0.024),
               ((58,), 0.0, -0.011))
    ),
    "lip_corner_depress": Action(
        (10,), (((48,), -0.004, 0.045), ((60,), 0.0, 0.036), ((49, 59), 0.0, 0.02),
                ((61,), 0.0, 0.008), ((67,), 0.0, 0.013))
    ),
    "chin_raise": Action(
        (11,), (((57,), 0.0, -0.02), ((58,), 0.0, -0.015), ((59,), 0.0, -0.008)), (("chin", 1.0),)
    ),
    "lip_stretch": Action(
        (12,), (((48,), -0.056, 0.017), ((60,), -0.05, 0.017), ((49,), -0.024, 0.008),
                ((59,), -0.024, 0.013), ((61, 67), -0.01, 0.0))
    ),
    "lip_press": Action(
        (13, 14), (((49,), 0.0, 0.012), ((50, 51), 0.0, 0.018), ((57,), 0.0, -0.022),
                   ((58,), 0.0, -0.02), ((59,), 0.0, -0.012), ((48, 60), 0.015, 0.0))
    ),
    "lips_part": Action(
        (15,), (((61,), 0.0, -0.007), ((62,), 0.0, -0.008), ((67,), 0.0, 0.034),
                ((66,), 0.0, 0.039), ((57,), 0.0, 0.034), ((58,), 0.0, 0.029), ((59,), 0.0, 0.018))
    ),
    "jaw_drop": Action(
        (16, 18), (((61,), 0.0, -0.007), ((62,), 0.0, -0.009), ((67,), 0.0, 0.058),
                   ((66,), 0.0, 0.066), ((57,), 0.0, 0.063), ((58,), 0.0, 0.058),
                   ((59,), 0.0, 0.035), ((48,), 0.017, 0.0), ((60,), 0.016, 0.0), ((49,), 0.007, 0))
    ),
    "lower_lip_depress": Action(
        (19,), (((57,), 0.0, 0.039), ((58,), 0.0, 0.042), ((59,), 0.0, 0.024), ((66, 67), 0, 0.028))
    ),
}  # fmt: skip
"""Facial actions; magnitudes are crop-frame units (0.01 = 0.64 px at 64 px, 2.24 px at 224)."""

# Canonical class id -> (action, weight). The reference codebook's AU lists (docs/method.md §2)
# decide which actions a class may use; Disgust's upper-lip raise sits inside its AU 15/16 mouth
# regions.
EXPRESSION_ACTIONS: tuple[tuple[tuple[str, float], ...], ...] = (
    (),  # Neutral
    (("cheek_raise", 1.0), ("lip_corner_pull", 1.0), ("lips_part", 0.8)),  # Happiness
    (("brow_raise", 1.0), ("upper_lid_raise", 1.0), ("jaw_drop", 1.0)),  # Surprise
    (("brow_raise", 0.7), ("inner_brow_raise", 0.6), ("brow_together", 1.0),
     ("upper_lid_raise", 1.0), ("lip_stretch", 1.0), ("lips_part", 1.0)),  # Fear
    (("brow_lower", 1.0), ("brow_together", 1.0), ("lid_tighten", 1.0), ("upper_lid_raise", 0.3),
     ("lip_press", 1.0), ("chin_raise", 0.4)),  # Anger
    (("nose_wrinkle", 1.0), ("upper_lip_raise", 1.0), ("lower_lip_depress", 0.6)),  # Disgust
    (("inner_brow_raise", 1.0), ("brow_together", 0.6), ("lip_corner_depress", 1.0),
     ("chin_raise", 1.0)),  # Sadness
)  # fmt: skip


def _expression_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per class: the (68, 2) displacement field and the mark strengths at intensity 1."""
    disp = np.zeros((NUM_CLASSES, 68, 2))
    marks = np.zeros((NUM_CLASSES, len(MARKS)))
    for cls, actions in enumerate(EXPRESSION_ACTIONS):
        for name, weight in actions:
            action = ACTIONS[name]
            for ids, dx, dy in action.moves:
                for i in ids:
                    if i in MIDLINE and dx != 0:
                        raise ValueError(f"action {name!r} moves midline landmark {i} sideways")
                    disp[cls, i] += weight * np.array([dx, dy])
                    if i not in MIDLINE:
                        disp[cls, MIRROR[i]] += weight * np.array([-dx, dy])
            for mark, strength in action.marks:
                marks[cls, MARKS.index(mark)] += weight * strength
    return disp, marks


DISPLACEMENTS, MARK_STRENGTHS = _expression_tables()


# (upper, lower, least gap in crop units, which one yields): outer vs inner lip contours, inner
# lips, upper vs lower lids, lower lip vs chin. Summed actions (Anger's pressed lips plus its chin
# raise on thin lips) could otherwise fold one contour over another.
ANATOMY_ORDER: tuple[tuple[int, int, float, str], ...] = (
    (50, 61, 0.003, "upper"), (51, 62, 0.003, "upper"), (52, 63, 0.003, "upper"),
    (61, 67, 0.0, "lower"), (62, 66, 0.0, "lower"), (63, 65, 0.0, "lower"),
    (67, 58, 0.003, "lower"), (66, 57, 0.003, "lower"), (65, 56, 0.003, "lower"),
    (37, 41, 0.004, "lower"), (38, 40, 0.004, "lower"), (44, 46, 0.004, "lower"),
    (43, 47, 0.004, "lower"), (57, 8, 0.012, "upper"), (58, 8, 0.012, "upper"),
    (56, 8, 0.012, "upper"),
)  # fmt: skip

# RGB stops of the skin, hair and iris colour ramps, dark to light.
SKIN_STOPS = ((92, 60, 44), (160, 112, 82), (222, 180, 150), (246, 216, 196))
HAIR_STOPS = ((22, 18, 16), (72, 46, 30), (142, 98, 58), (206, 176, 122))
IRIS_STOPS = ((82, 52, 30), (78, 108, 60), (70, 110, 150))

# Painter's order: (geometry, colour, kind, gate). Kinds: "fill" polygon, "line" thin polyline,
# "thick" lid-weight polyline. A gated stroke is drawn only where its gate is true, so a neutral
# face never carries an invisible trace of an expression mark.
STROKES: tuple[tuple[str, str, str, str | None], ...] = (
    ("neck", "skin_dark", "fill", None), ("hair", "hair", "fill", "hair"),
    ("ears", "skin_dark", "fill", None), ("face", "skin", "fill", None),
    ("cheeks", "cheek", "fill", None), ("cheek_hi", "cheek_hi", "fill", "cheek"),
    ("folds", "fold", "line", "fold"), ("frown", "frown", "line", "frown"),
    ("brows", "brow", "fill", None), ("sclera", "sclera", "fill", None),
    ("iris", "iris", "fill", None), ("creases", "crease", "line", None),
    ("upper_lids", "lid", "thick", None), ("lower_lids", "lower_lid", "line", None),
    ("nose_shade", "nose_shade", "line", None), ("nose_wrinkles", "nose_wrinkle", "line", "nose"),
    ("nostril_base", "nostril_base", "line", None), ("nostrils", "nostril", "fill", None),
    ("lips", "lip", "fill", None), ("cavity", "cavity", "fill", "open"),
    ("teeth", "teeth", "fill", "open"), ("mouth_lines", "mouth_line", "line", None),
    ("chin_crease", "chin", "line", "chin"),
)  # fmt: skip
