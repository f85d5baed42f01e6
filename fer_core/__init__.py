"""AU-guided interpretable facial expression recognition: the method, without Ray."""

CLASSES: tuple[str, ...] = (
    "Neutral",
    "Happiness",
    "Surprise",
    "Fear",
    "Anger",
    "Disgust",
    "Sadness",
)
"""Canonical class order used in every tensor, table and MLflow key."""

NUM_CLASSES = len(CLASSES)
NEUTRAL = 0
EXPRESSION_CLASSES: tuple[int, ...] = tuple(range(1, NUM_CLASSES))
"""The six expression classes over which macro cosine metrics are averaged."""

__all__ = ["CLASSES", "NUM_CLASSES", "NEUTRAL", "EXPRESSION_CLASSES"]
