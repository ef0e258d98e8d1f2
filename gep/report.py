"""The assessment report: one static HTML page (figures embedded as PNG, no server, no network)
a loan officer would rather look at than read: maps of GEP per km² and of ΔGEP by county, ΔGEP by
service split into land-cover change and the rest, the extent change matrix, the summary table,
and the inputs and method choices. Rendered from the assessment's own tables with matplotlib.
"""
from __future__ import annotations

import base64
import html
import io as _io

import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

YI = 1e8  # 亿元


def _png(fig) -> str:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _map(units, column: str, title: str, label: str, diverging: bool) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    values = units[column] / YI
    scale = {"vmin": float(values.min()), "vmax": float(values.max())} if len(values) else {}
    if diverging and len(values) and values.min() < 0 < values.max():
        scale = {"norm": TwoSlopeNorm(vcenter=0.0, vmin=values.min(), vmax=values.max())}
    units.assign(v=values).plot(column="v", ax=ax, cmap="RdYlGn" if diverging else "YlGn", edgecolor="#444",
                                linewidth=0.6, legend=True, legend_kwds={"label": label, "shrink": 0.7}, **scale)
    for _, r in units.iterrows():
        p = r.geometry.representative_point()
        ax.annotate(r.unit_id, (p.x, p.y), ha="center", fontsize=7)
    ax.set_title(title)
    ax.set_axis_off()
    return _png(fig)


def _bars(changes: pd.DataFrame) -> str:
    by = changes.groupby("service")[["delta_extent_constant_cny", "delta_other_constant_cny"]].sum() / YI
    by = by.loc[by.abs().sum(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(by) + 1.5))
    ax.barh(by.index, by.delta_extent_constant_cny, color="#2e7d32", label="land-cover change")
    ax.barh(by.index, by.delta_other_constant_cny, left=by.delta_extent_constant_cny.clip(lower=0).where(
        by.delta_other_constant_cny >= 0, by.delta_extent_constant_cny.clip(upper=0)), color="#90a4ae",
        label="other inputs (climate, statistics)")
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.set_xlabel("ΔGEP, 1e8 CNY at constant prices")
    ax.set_title("ΔGEP by service, all counties")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _table(df: pd.DataFrame, floats: str = "{:,.2f}") -> str:
    return df.to_html(index=False, border=0, classes="t", float_format=lambda v: floats.format(v), na_rep="")


def render(summary: pd.DataFrame, changes: pd.DataFrame, matrix: pd.DataFrame, units, meta: dict[str, str]) -> str:
    """The report's HTML. ``meta``: the inputs and method choices to list (title, policy, ...)."""
    baseline, year = int(summary.baseline_year.iloc[0]), int(summary.year.iloc[0])
    title = f"GEP assessment {baseline} → {year}"
    shown = summary.assign(gep_baseline_yi=summary.gep_baseline_cny / YI, gep_yi=summary.gep_cny / YI,
                           delta_yi=summary.delta_gep_cny / YI, delta_extent_yi=summary.delta_gep_extent_cny / YI)[
        ["unit_id", "unit_name", "gep_baseline_yi", "gep_yi", "delta_yi", "delta_gep_pct", "delta_extent_yi",
         "impact_flag", "discount_pp", "discount_tier", "discount_reasons"]]
    moved = matrix.groupby(["from_type", "to_type"]).area_ha.sum().unstack(fill_value=0.0)
    total = summary.delta_gep_cny.sum() / YI
    parts = [
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}"
        "table.t{border-collapse:collapse;font-size:12px}table.t td,table.t th{border-bottom:1px solid #ddd;"
        "padding:3px 6px;text-align:right}.figs img{max-width:48%;margin-right:1%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(meta.get('title', ''))}</p>",
        f"<p><b>ΔGEP, all counties: {total:+,.2f} × 10⁸ CNY</b> at constant {int(summary.constant_price_year.iloc[0])} "
        f"prices; land-cover change {summary.delta_gep_extent_cny.sum() / YI:+,.2f}, other inputs "
        f"{summary.delta_gep_other_cny.sum() / YI:+,.2f}.</p>",
        "<h2>Maps</h2><div class='figs'>",
        f"<img alt='map of GEP per km2' src='data:image/png;base64,"
        f"{_map(units, 'gep_per_km2_cny', f'GEP per km², {year}', '1e8 CNY/km²', False)}'>",
        f"<img alt='map of delta GEP' src='data:image/png;base64,"
        f"{_map(units, 'delta_gep_cny', f'ΔGEP {baseline}→{year}', '1e8 CNY', True)}'>",
        "</div>",
        "<h2>ΔGEP by service</h2>",
        f"<img alt='delta GEP by service' src='data:image/png;base64,{_bars(changes)}'>",
        "<h2>Loan summary</h2>", _table(shown),
        "<h2>Ecosystem extent change matrix (ha, all counties; rows: baseline type, columns: assessment type)</h2>",
        moved.to_html(border=0, classes="t", float_format=lambda v: f"{v:,.0f}"),
        "<h2>Inputs and method choices</h2><ul>",
        *(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in meta.items()),
        "</ul></body></html>",
    ]
    return "\n".join(parts)
