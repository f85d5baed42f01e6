"""The study's finished report: ``analysis.report`` per dataset, LaTeX tables, seed power.

Per dataset (``--where dataset=...`` when the study has several) the report holds Tables 1–4
and the figures with mean ± CI over seeds and paired tests (``analysis.report``: Markdown and
HTML), the tables again as LaTeX (``tables.tex``), and a section saying whether the seeds
resolve each claim (``tuner.study.power``). A study with several datasets gets an index page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.study import power

SECTION = "## Do the seeds suffice?"


def claims(study: Any, dataset: str | None) -> list[power.Claim]:
    """The claims on the first part's paired baseline and paper-point trials of ``dataset``."""
    from fer_core import metric_names as mn
    from tuner.study.progress import done_trials

    done = done_trials(study.client, study.state.experiment_id, study.commit)
    first = next(j for j in study.plan.jobs if j.dataset == dataset)
    arms: dict[bool, dict[str, dict[int, float]]] = {False: {}, True: {}}
    for trial in first.trials:
        run = done.get(trial.key)
        if run is None:
            continue
        with_au = float(trial.config["lambda_au"]) > 0
        for metric in (mn.TEST_CL, mn.TEST_ATT_COS):
            value = run.data.metrics.get(metric)
            if value is not None:
                arms[with_au].setdefault(metric, {})[int(trial.config["seed"])] = float(value)
    return [
        power.gained("interpretability gained", mn.TEST_ATT_COS,
                     arms[False].get(mn.TEST_ATT_COS, {}), arms[True].get(mn.TEST_ATT_COS, {})),
        power.kept(f"accuracy kept (loss < {power.CL_MARGIN:g} CL point)", mn.TEST_CL,
                   arms[False].get(mn.TEST_CL, {}), arms[True].get(mn.TEST_CL, {})),
    ]


def seeds_section(study: Any, dataset: str | None) -> str:
    lines = [SECTION, "", "Paired over seeds: the λ = 0 baseline against λ = 4 at layer 5 "
             f"(one-sided tests at α = {power.ALPHA}; method: docs/method.md §7).", ""]
    return "\n".join(lines + [c.line() for c in claims(study, dataset)]) + "\n"


def latex_tables(runs: Any, experiment: str) -> str:
    from analysis import render
    from analysis.report import build_tables

    parts = []
    for result in build_tables(runs, experiment):
        parts.append(render.latex(result.table) if result.table is not None else
                     f"% Table {result.number}: not made ({result.reason})\n")
    return "\n".join(parts)


def narrowed_tables(runs: Any, experiment: str, method: str) -> list[Any]:
    """Tables the whole experiment cannot make because a cell would mix methods (Table 3's
    baseline row sees every method's λ = 0 runs), made over the study's baseline method."""
    from analysis.report import build_tables
    from analysis.tables import default_table, select

    made = []
    for result in build_tables(runs, experiment):
        # Any table not made is tried again over one method: a study's methods differ in more
        # than the method (APViT and TS-CAM bring their own backbones), so the reason names
        # other fields first; narrowing cannot make a table that failed for another reason.
        if result.table is None:
            try:
                made.append(default_table(select(runs, [f"method={method}"]), result.number,
                                          experiment))
            except ValueError:
                continue
    return made


def render_markdown(table: Any) -> str:
    from analysis import render

    return render.markdown(table)


def render_latex(table: Any) -> str:
    from analysis import render

    return render.latex(table)


def render_html(table: Any) -> str:
    from analysis import render

    return render.html_table(table)


def one_dataset(study: Any, dataset: str | None, out: Path) -> Path:
    import html

    import matplotlib

    matplotlib.use("Agg")
    from analysis.figures import load_selection
    from analysis.report import write_report

    where = [f"dataset={dataset}"] if dataset else []
    md, page = write_report(study.plan.experiment, study.uri, out, where)
    runs = load_selection(study.plan.experiment, study.uri, where)
    (out / "tables.tex").write_text(latex_tables(runs, study.plan.experiment), encoding="utf-8")
    method = next(j for j in study.plan.jobs if j.dataset == dataset).trials[0].config["method"]
    narrowed = narrowed_tables(runs, study.plan.experiment, method)
    if narrowed:
        with (out / "tables.tex").open("a", encoding="utf-8") as tex:
            tex.write("\n".join(render_latex(t) for t in narrowed))
    section = seeds_section(study, dataset)
    md.write_text(md.read_text(encoding="utf-8") + "".join(
        f"\n### Table {t.spec.number} over method {method}'s runs\n\n{render_markdown(t)}\n"
        for t in narrowed) + "\n" + section
        + "\nLaTeX tables: [tables.tex](tables.tex)\n", encoding="utf-8")
    block = "".join(render_html(t) for t in narrowed)
    block += "<h2>Do the seeds suffice?</h2><ul>" + "".join(
        f"<li>{html.escape(line[2:])}</li>" for line in section.splitlines()
        if line.startswith("- ")) + '</ul><p><a href="tables.tex">LaTeX tables</a></p>'
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", block + "</body>"), encoding="utf-8")
    return md


def write_study_report(study: Any) -> Path:
    """Write the report; returns the page to open (``index.md``). Logged to the study's run."""
    args = study.plan.args
    out = Path(args.report_dir or Path("report") / study.plan.name).resolve()
    datasets = args.datasets
    if len(datasets) == 1:
        path = one_dataset(study, datasets[0], out)
    else:
        pages = [(d, one_dataset(study, d, out / str(d))) for d in datasets]
        path = out / "index.md"
        path.write_text(f"# Study {study.plan.study.name} at profile {study.plan.profile}\n\n"
                        + "".join(f"- [{d}]({p.relative_to(out).as_posix()})\n"
                                  for d, p in pages), encoding="utf-8")
    study.client.log_artifact(study.state.parent_run_id, str(path))
    return path
