"""``capwatch report``: a trading day told the way the press covers a crash.

One self-contained HTML page (charts inlined as PNG, no script or font fetched from anywhere) and
each chart as PNG and SVG beside it, built from the public models by the queries in
``transforms/reports/`` (each reads the day from ``getvariable('report_day')``, the trading day before from
``getvariable('report_prev_day')``; ``day_losses`` ranks the ``getvariable('report_ranked')``
largest losses, the ones shown):

- the day's largest losses in dollars (bar chart, with the % move), each with its rank in the
  universe's history and in the company's own;
- each big loser's market cap over the months around the day, the day marked;
- the ranking of the most valuable companies before and after (#1 -> #3);
- the universe's total change and each group's (``market_daily``, ``group_daily_moves``);
- the alerts that fired and what was delivered.

Charts are Vega-Lite specs rendered offline by vl-convert (no browser, no network). Nothing here
imports pandas, Prefect or Great Expectations.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from capwatch.output import lit
from capwatch.report import fmt_usd
from capwatch.resources import transforms_dir

REPORT_QUERIES = ("day_losses", "cap_history", "value_ranking", "market_day", "alerts_day")
LOSERS_CHARTED = 5  # companies whose market-cap history is drawn


class ReportError(RuntimeError):
    """No report can be made for that day (no data, not a trading day in the warehouse)."""


@dataclass
class DayReport:
    day: date
    html_path: Path
    charts: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # name -> (png, svg)
    tables: dict[str, tuple[list[str], list[tuple]]] = field(default_factory=dict)
    headline: str = ""

    @property
    def size_bytes(self) -> int:
        return self.html_path.stat().st_size

    def markdown(self) -> str:
        """A summary for the Prefect artifact: the headline, the top losses, where the page is."""
        cols, rows = self.tables["day_losses"]
        i = {c: n for n, c in enumerate(cols)}
        lines = [
            f"## Report for {self.day}",
            "",
            self.headline,
            "",
            "| company | move | % |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {r[i['company']]} | {fmt_usd(r[i['change_usd']])} | {r[i['change_pct']]:+.2f}% |"
            for r in rows[:5]
        ]
        lines += [
            "",
            f"Full report: `{self.html_path}` ({self.size_bytes / 1e3:,.0f} kB, {len(self.charts)} charts)",
        ]
        return "\n".join(lines)


def _query(con: duckdb.DuckDBPyConnection, name: str) -> tuple[list[str], list[tuple]]:
    sql = (transforms_dir() / "reports" / f"{name}.sql").read_text()
    cur = con.execute(sql)
    return [d[0] for d in cur.description], cur.fetchall()


def report_day(con: duckdb.DuckDBPyConnection, on: date | None) -> date:
    """``on`` if the warehouse has that trading day, else a ReportError naming the nearest ones;
    None: the newest day."""
    newest = con.execute("select max(date) from market_daily").fetchone()[0]
    if newest is None:
        raise ReportError("the warehouse has no market data yet: run `capwatch backfill` first")
    if on is None:
        return newest
    found = con.execute(f"select count(*) from market_daily where date = {lit(on)}").fetchone()[0]
    if not found:
        before, after = con.execute(
            f"select max(date) filter (where date < {lit(on)}), min(date) filter (where date > {lit(on)}) from market_daily"
        ).fetchone()
        near = ", ".join(str(d) for d in (before, after) if d)
        raise ReportError(
            f"no trading data for {on} in the warehouse (nearest trading days: {near or 'none'})"
        )
    return on


# -- charts ---------------------------------------------------------------------------------------

FONT = "Liberation Sans, DejaVu Sans, Arial, sans-serif"
CONFIG = {
    "font": FONT,
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "grid": True, "gridColor": "#eee"},
    "title": {"fontSize": 15, "anchor": "start"},
}


def labelled_bars(title: str, values: list[dict], x_title: str) -> dict:
    """Horizontal bars in the given order, ``values`` as {name, x, label}: red below zero, green
    above, each bar's label written at the zero line."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": 560,
        "height": 24 * max(len(values), 1),
        "data": {"values": values},
        "encoding": {
            "y": {"field": "name", "type": "nominal", "sort": None, "title": None},
            "x": {"field": "x", "type": "quantitative", "title": x_title},
        },
        "layer": [
            {
                "mark": {"type": "bar"},
                "encoding": {
                    "color": {
                        "condition": {"test": "datum.x < 0", "value": "#c0392b"},
                        "value": "#27ae60",
                    }
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
                "encoding": {"text": {"field": "label"}, "x": {"datum": 0}},
            },
        ],
        "config": CONFIG,
    }


def losses_chart(day: date, rows: list[dict]) -> dict:
    values = [
        {
            "name": r["company"],
            "x": r["change_usd"] / 1e9,
            "label": f"{fmt_usd(r['change_usd'])} ({r['change_pct']:+.1f}%)",
        }
        for r in rows
    ]
    return labelled_bars(
        f"Largest market-value losses on {day}", values, "market move (USD billions)"
    )


def history_chart(day: date, rows: list[dict], order: list[str]) -> dict:
    values = [
        {"company": r["company"], "date": r["date"].isoformat(), "cap": r["market_cap"] / 1e9}
        for r in rows
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"Market value around {day} (the day marked)",
        "data": {"values": values},
        "facet": {"row": {"field": "company", "type": "nominal", "title": None, "sort": order}},
        "spec": {
            "width": 560,
            "height": 110,
            "layer": [
                {
                    "mark": {"type": "line", "color": "#2c3e50", "strokeWidth": 1.5},
                    "encoding": {
                        "x": {"field": "date", "type": "temporal", "title": None},
                        "y": {
                            "field": "cap",
                            "type": "quantitative",
                            "title": "USD bn",
                            "scale": {"zero": False},
                        },
                    },
                },
                {
                    "mark": {"type": "rule", "color": "#c0392b", "strokeDash": [4, 3]},
                    "encoding": {
                        "x": {
                            "datum": {"expr": f"datetime({day.year}, {day.month - 1}, {day.day})"},
                            "type": "temporal",
                        }
                    },
                },
            ],
        },
        "resolve": {"scale": {"y": "independent"}},
        "config": CONFIG,
    }


def groups_chart(day: date, rows: list[dict]) -> dict:
    values = [
        {
            "name": r["group_name"] or "all companies",
            "x": r["change_pct"],
            "label": fmt_usd(r["change_usd"]),
        }
        for r in rows
        if r["change_pct"] is not None
    ]
    return labelled_bars(f"The universe and its groups on {day}", values, "market move (%)")


def render(spec: dict, out_dir: Path, name: str) -> tuple[Path, Path, bytes]:
    import vl_convert as vlc

    # The PNG from the SVG: the chart is laid out once (the same bytes as vegalite_to_png).
    svg = vlc.vegalite_to_svg(spec)
    png = vlc.svg_to_png(svg, scale=1.5)
    png_path, svg_path = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    png_path.write_bytes(png)
    svg_path.write_text(svg)
    return png_path, svg_path, png


# -- the page -------------------------------------------------------------------------------------


def _dicts(table: tuple[list[str], list[tuple]]) -> list[dict]:
    cols, rows = table
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    th = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i in numeric else ""}">{html.escape(str(c))}</td>'
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body or '<tr><td>(none)</td></tr>'}</tbody></table>"


def build_report(
    con: duckdb.DuckDBPyConnection, on: date | None, out_dir: Path, top: int = 10
) -> DayReport:
    """Write the day's report into ``out_dir`` (created); returns where everything went."""
    day = report_day(con, on)
    con.execute(f"set variable report_day = {lit(day)}")
    con.execute(
        "set variable report_prev_day = "
        f"(select max(date) from market_daily where date < {lit(day)})"
    )
    con.execute(f"set variable report_ranked = {int(top)}")  # ranks for the losses shown
    losses = _query(con, "day_losses")
    movers = _dicts(losses)
    losers = [r for r in movers if r["change_usd"] < 0][:top]
    charted = [r["company"] for r in losers[:LOSERS_CHARTED]]
    con.execute(
        "set variable report_companies = [" + ", ".join(lit(c) for c in charted) + "]::varchar[]"
    )
    tables = {name: _query(con, name) for name in REPORT_QUERIES if name != "day_losses"}
    tables["day_losses"] = losses
    out_dir.mkdir(parents=True, exist_ok=True)
    report = DayReport(day=day, html_path=out_dir / f"capwatch-report-{day}.html", tables=tables)

    market = _dicts(tables["market_day"])
    universe = next((r for r in market if r["group_name"] is None), None)
    if universe and universe["change_usd"] is not None:
        report.headline = (
            f"On {day} the {universe['companies']} companies tracked moved {fmt_usd(universe['change_usd'])} "
            f"({universe['change_pct']:+.2f}%) to {fmt_usd(universe['total_market_cap']).lstrip('+')}; "
            f"{universe['companies_down']} fell, {universe['down_5_pct']} by more than 5 % and "
            f"{universe['down_10_pct']} by more than 10 %."
        )
    else:
        report.headline = f"No market move could be computed for {day}."

    images = {}
    specs = {}
    if losers:
        specs["losses"] = losses_chart(day, losers)
        history = _dicts(tables["cap_history"])
        if history:
            specs["market_cap_history"] = history_chart(day, history, charted)
    if market:
        specs["groups"] = groups_chart(day, market)
    for name, spec in specs.items():
        png_path, svg_path, png = render(spec, out_dir, f"capwatch-report-{day}-{name}")
        report.charts[name] = (png_path, svg_path)
        images[name] = base64.b64encode(png).decode()

    def img(name: str, alt: str) -> str:
        if name not in images:
            return '<p class="none">(no data to chart)</p>'
        svg = report.charts[name][1].name
        return (
            f'<figure><img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{images[name]}">'
            f'<figcaption><a href="{html.escape(svg)}">SVG</a></figcaption></figure>'
        )

    loss_rows = [
        [
            r["company"],
            r["ticker"],
            fmt_usd(r["change_usd"]),
            f"{r['change_pct']:+.2f}%",
            fmt_usd(r["market_cap"]).lstrip("+"),
            f"#{r['rank_usd']}" if r["rank_usd"] else "-",
            f"#{r['company_rank_usd']}" if r["company_rank_usd"] else "-",
        ]
        for r in losers
    ]
    ranking = [
        [
            r["company"],
            f"#{r['rank_before']}" if r["rank_before"] else "-",
            f"#{r['rank_after']}" if r["rank_after"] else "-",
            fmt_usd(r["market_cap_before"]).lstrip("+"),
            fmt_usd(r["market_cap_after"]).lstrip("+"),
        ]
        for r in _dicts(tables["value_ranking"])
    ]
    groups = [
        [
            r["group_name"] or "all companies",
            fmt_usd(r["change_usd"]),
            f"{r['change_pct']:+.2f}%" if r["change_pct"] is not None else "-",
            f"{r['companies_down']} of {r['companies']}",
            str(r["down_10_pct"]),
        ]
        for r in market
    ]
    alerts = [
        [
            r["rule"],
            r["company"],
            r["message"],
            "withdrawn"
            if r["withdrawn"]
            else f"sent {r['deliveries_sent']}, failed {r['deliveries_failed']}"
            if r["notify"]
            else "recorded only (backfill)",
        ]
        for r in _dicts(tables["alerts_day"])
    ]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>capwatch report {day}</title>
<style>
body {{ font-family: {FONT}; margin: 2em auto; max-width: 960px; color: #222; }}
h1 {{ font-size: 1.6em; margin-bottom: .2em; }} h2 {{ font-size: 1.2em; margin-top: 1.6em; }}
.headline {{ font-size: 1.1em; }}
table {{ border-collapse: collapse; margin: .5em 0; }}
th, td {{ padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
img.chart {{ max-width: 100%; }} figure {{ margin: .5em 0; }} figcaption {{ font-size: .8em; }}
</style></head>
<body>
<h1>capwatch: {day}</h1>
<p class="headline">{html.escape(report.headline)}</p>
<h2>Largest losses</h2>
{img("losses", f"bar chart of the largest market-value losses on {day}")}
{_table(["company", "ticker", "market move", "%", "market cap", "rank in history (all)", "rank in its history"], loss_rows, {2, 3, 4, 5, 6})}
<h2>Market value around the day</h2>
{img("market_cap_history", "market cap of the largest losers over the months around the day")}
<h2>The most valuable companies</h2>
{_table(["company", "rank before", "rank after", "market cap before", "market cap after"], ranking, {1, 2, 3, 4})}
<h2>The universe and its groups</h2>
{img("groups", "market move of the universe and each group")}
{_table(["group", "market move", "%", "down", "down > 10 %"], groups, {1, 2, 4})}
<h2>Alerts</h2>
{_table(["rule", "company", "message", "delivery"], alerts)}
<p class="none">Market moves are today's shares times the price change (capwatch README, "Market moves");
data from the warehouse's public models; generated by capwatch.</p>
<script>
window.addEventListener("load", function () {{
  var drawn = Array.prototype.filter.call(document.images, function (i) {{ return i.naturalWidth > 0; }});
  document.body.setAttribute("data-charts-drawn", String(drawn.length));
}});
</script>
</body></html>
"""
    report.html_path.write_text(page)
    return report
