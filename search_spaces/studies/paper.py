"""``paper``: the paper's experimental section (docs/method.md §10).

- first answers: the λ = 0 baseline and the paper's point (λ = 4 at layer 5), the rows every
  table shares, run first for every dataset;
- Tables 1–2: every registered CAM method at λ = 0 and λ = 4 (the ``methods`` space);
- Table 3: the layer sets at λ = 4 plus the baseline (``layers``);
- Fig. 5: the λ grid at layer 5 (``lambda``).

Run at ``--profile paper`` with ``--dataset rafdb --dataset affectnet`` for the published
protocol (docs/studies.md); at ``laptop`` or ``smoke`` on synthetic faces here.
"""

from __future__ import annotations

from search_spaces.studies import Part, Study, register

STUDY = register(Study(
    name="paper",
    description="Tables 1–3 and Fig. 5: the baselines and λ=4@5 first, then every method, "
                "layer set and λ",
    parts=(
        # The layers space pinned to layer 5: its grid is λ = 4 there, plus its λ = 0 reference.
        Part("first", "first answers (λ=0 and λ=4 at layer 5)", "layers", {"layers": "5"},
             first=True),
        Part("methods", "Tables 1–2", "methods"),
        Part("layers", "Table 3", "layers"),
        Part("lambda", "Fig. 5", "lambda"),
    ),
))
