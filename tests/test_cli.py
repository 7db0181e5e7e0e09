"""The command line, end to end on the real shared data, through real Prefect flow runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from capwatch.cli import main
from tests.conftest import open_db


@pytest.mark.slow
def test_losses_on_deepseek_day(full_history):
    res = CliRunner().invoke(
        main, ["losses", "--db", str(full_history), "--on", "2025-01-27", "--top", "5"]
    )
    assert res.exit_code == 0, res.output
    lines = {ln.split()[2]: ln for ln in res.output.splitlines()[2:]}
    assert list(lines)[0] == "NVDA"
    assert "-16.97%" in lines["NVDA"] and "-$592.7B" in lines["NVDA"]
    for t in ("AVGO", "ORCL"):
        pct = float(re.search(r"(-\d+\.\d+)%", lines[t]).group(1))
        assert pct < -10, lines[t]


@pytest.mark.slow
def test_nvda_split_day_has_no_jump_and_caps_trace(full_history):

    con = open_db(full_history)
    (pct,) = con.execute(
        "select change_pct from daily_moves where ticker='NVDA' and date='2024-06-10'"
    ).fetchone()
    assert abs(pct) < 1.5  # NVDA's price moved +0.75 % that day; the 10x split is not a move
    row = con.execute(
        "select shares, shares_as_of, shares_reported_date, split_factor from market_cap_daily "
        "where ticker='NVDA' and date='2025-01-27'"
    ).fetchone()
    assert row == (
        24_490_000_000,
        __import__("datetime").date(2024, 11, 15),
        __import__("datetime").date(2024, 11, 20),
        1.0,
    )
    con.close()


@pytest.mark.slow
def test_losses_by_pct_for_one_ticker(full_history):
    res = CliRunner().invoke(
        main, ["losses", "--db", str(full_history), "--by", "pct", "--ticker", "nvda", "--top", "3"]
    )
    assert res.exit_code == 0, res.output
    assert all(" NVDA " in ln for ln in res.output.splitlines()[2:])


@pytest.mark.slow
def test_official_duckdb_cli_reads_the_file(full_history):
    cli = Path(__import__("sys").executable).parent / "duckdb"
    assert cli.exists(), "duckdb-cli is a dev dependency: `uv sync --all-groups`"
    out = subprocess.run(
        [
            str(cli),
            "-readonly",
            str(full_history),
            "-csv",
            "-noheader",
            "-c",
            "select ticker, round(change_usd / 1e9, 1) from largest_losses where date = '2025-01-27' order by change_usd limit 1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "NVDA,-592.7"


@pytest.mark.slow
def test_injection_in_a_symbol_is_refused_before_any_io(full_history):
    res = CliRunner().invoke(
        main, ["losses", "--db", str(full_history), "--ticker", "NVDA'; DROP TABLE prices_daily;--"]
    )
    assert res.exit_code == 3  # configuration: the symbol rule
    assert "not a valid symbol" in res.output

    con = open_db(full_history)
    assert con.execute("select count(*) from prices_daily").fetchone()[0] == 136472
    con.close()


def test_losses_without_a_warehouse_says_what_to_do(tmp_path):
    res = CliRunner().invoke(main, ["losses", "--db", str(tmp_path / "none.duckdb")])
    assert res.exit_code == 4 and "capwatch backfill" in res.output  # 4: the warehouse file


def test_backfill_with_unknown_and_bad_tickers_still_loads_good_ones(
    prefect_harness, shared_dir, tmp_path
):
    db = tmp_path / "c.duckdb"
    res = CliRunner().invoke(
        main,
        [
            "backfill",
            "--db",
            str(db),
            "--source",
            f"csv:{shared_dir}",
            "--start",
            "2025-01-01",
            "--end",
            "2025-01-31",
            "--tickers",
            "NVDA,NOSUCH,../../etc",
        ],
    )
    assert res.exit_code == 1, res.output  # completed, but some requested tickers failed
    assert "NOSUCH (prices): unknown ticker" in res.output
    assert "'../../etc': not a valid symbol" in res.output

    con = open_db(db)
    assert con.execute("select distinct ticker from prices_daily").fetchall() == [("NVDA",)]
    con.close()


@pytest.mark.slow
def test_full_history_is_sane_company_by_company(full_history):
    """Issue 4: no company's cap moves > 60 % in a day unless its price did; bad counts are listed."""

    con = open_db(full_history)
    jumps = con.execute("""
        select m.company, m.date, m.change_pct,
               100 * (p.close * p.price_split_factor / (q.close * q.price_split_factor) - 1) as price_pct
        from company_daily_moves m
        join stg_prices p on p.ticker = m.ticker and p.date = m.date
        join stg_prices q on q.ticker = m.ticker and q.date = m.prev_date
        where abs(m.change_pct) > 60 and abs(price_pct) < 0.5 * abs(m.change_pct)
    """).fetchall()
    assert jumps == []
    quarantined = con.execute(
        "select ticker, date from quarantine where dataset = 'shares_outstanding' order by ticker, date"
    ).fetchall()
    d = __import__("datetime").date
    assert quarantined == [
        ("AMD", d(2012, 7, 27)),
        ("CRM", d(2011, 4, 30)),
        ("ORCL", d(2012, 9, 17)),
        ("QCOM", d(2011, 4, 18)),
        ("QCOM", d(2011, 10, 31)),
    ]
    top = con.execute(
        "select company, date from largest_losses where rank_usd <= 3 order by rank_usd"
    ).fetchall()
    assert top == [("NVDA", d(2025, 1, 27)), ("MSFT", d(2026, 1, 29)), ("AAPL", d(2025, 4, 3))]
    con.close()


@pytest.mark.slow
def test_full_history_moves_are_market_moves(full_history, shared_dir):
    """Issue 13 on the real data: every single-class listing-day's move is its price move (as-traded
    close to close, a true split's ratio applied on its day), count steps are published apart."""
    import datetime as dt

    con = open_db(full_history)
    con.execute(
        f"create temp view raw_splits as select * from read_csv('{shared_dir / 'splits.csv'}')"
    )
    off = con.execute("""
        with price_move as (
            select p.ticker, p.date,
                   100 * (p.close / (lag(p.close) over (partition by p.ticker order by p.date)
                          / coalesce(s.ratio, 1)) - 1) as price_pct
            from prices_daily p
            left join raw_splits s on s.ticker = p.ticker and s.date = p.date and s.ratio not in (1.046, 1.998)
        )
        select m.company, m.date, m.change_pct, p.price_pct
        from company_daily_moves m join price_move p on p.ticker = m.ticker and p.date = m.date
        where m.company = m.ticker and (m.change_pct is null or abs(m.change_pct - p.price_pct) > 0.1)
    """).fetchall()
    assert off == []
    assert con.execute(
        "select count(*) from company_daily_moves where held_reason is not null"
    ).fetchone() == (0,)
    assert (
        con.execute("select count(*) from company_daily_moves where shares_changed").fetchone()[0]
        > 1000
    )

    def move(company, day):
        return con.execute(
            "select round(change_pct, 2), round(change_usd / 1e9, 1) from company_daily_moves "
            "where company = ? and date = ?",
            [company, day],
        ).fetchone()

    assert move("QCOM", "2018-11-08") == (-8.16, -6.3)
    assert con.execute(
        "select count(*) from alert_events where company = 'QCOM' and date = '2018-11-08'"
    ).fetchone() == (0,)
    assert move("NVDA", "2025-02-27") == (-8.48, -271.6)
    ibm = con.execute(
        "select date, shares from market_cap_daily where ticker = 'IBM' "
        "and date between '2021-11-03' and '2021-11-05' order by date"
    ).fetchall()
    assert [s for _, s in ibm] == [
        896_320_073
    ] * 3  # the Kyndryl spin-off does not change IBM's count
    assert move("IBM", "2022-02-23")[0] == -1.49  # IBM's price move that day, not -5.56 %
    top10 = con.execute(
        "select company, date from largest_losses where rank_usd <= 10 order by rank_usd"
    ).fetchall()
    d = dt.date
    assert top10 == [
        ("NVDA", d(2025, 1, 27)),
        ("MSFT", d(2026, 1, 29)),
        ("AAPL", d(2025, 4, 3)),
        ("NVDA", d(2024, 9, 3)),
        ("NVDA", d(2025, 2, 27)),
        ("NVDA", d(2025, 3, 3)),
        ("NVDA", d(2026, 2, 26)),
        ("NVDA", d(2026, 5, 15)),
        ("NVDA", d(2026, 4, 30)),
        ("NVDA", d(2025, 10, 10)),
    ]
    con.close()


@pytest.mark.slow
def test_query_commands_script_in_json_and_csv_matching_the_table(full_history):
    import csv
    import io
    import json

    args = ["losses", "--db", str(full_history), "--on", "2025-01-27", "--top", "4"]
    table = CliRunner().invoke(main, args)
    as_json = CliRunner().invoke(main, [*args, "--format", "json"])
    as_csv = CliRunner().invoke(main, [*args, "--format", "csv"])
    assert table.exit_code == as_json.exit_code == as_csv.exit_code == 0
    rows = json.loads(as_json.output)
    assert [r["ticker"] for r in rows] == [ln.split()[2] for ln in table.output.splitlines()[2:]]
    assert rows[0]["ticker"] == "NVDA" and round(rows[0]["change_usd"] / 1e9, 1) == -592.7
    assert rows[0]["date"] == "2025-01-27"
    assert list(csv.DictReader(io.StringIO(as_csv.output))) == [
        {k: str(v) for k, v in r.items()} for r in rows
    ]
    sql = CliRunner().invoke(
        main,
        [
            "sql",
            "--db",
            str(full_history),
            "--format",
            "json",
            "select ticker, round(change_usd / 1e9, 1) as busd from largest_losses "
            "where date = '2025-01-27' order by change_usd limit 1",
        ],
    )
    assert json.loads(sql.output) == [{"ticker": "NVDA", "busd": -592.7}]
    quality = json.loads(
        CliRunner().invoke(main, ["quality", "--db", str(full_history), "--format", "json"]).output
    )
    assert set(quality) == {"validation", "quarantine", "share_count_conflicts"}
    assert any(q["dataset"] == "shares_outstanding" for q in quality["quarantine"])


def test_sql_is_read_only_and_errors_are_one_line(tmp_path):

    db = tmp_path / "w.duckdb"
    con = open_db(db, read_only=False)
    con.execute("create table t as select 1 as x")
    con.close()
    res = CliRunner().invoke(main, ["sql", "--db", str(db), "drop table t"])
    assert res.exit_code == 2 and "read-only" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["sql", "--db", str(db), "selec 1"])
    assert res.exit_code == 2 and res.output.startswith("capwatch: sql: Parser Error")
    res = CliRunner().invoke(
        main, ["sql", "--db", str(db), "select x, 'a,b' as y from t", "--format", "csv"]
    )
    assert res.output.strip() == 'x,y\n1,"a,b"'


def test_ticker_finds_the_company_by_any_listing_or_its_name(tmp_path, prefect_harness, shared_dir):
    """GOOGL and GOOG both find Alphabet (filed under one listing), and so does its name."""

    from capwatch.transform import run_models
    from tests.conftest import insert_prices, insert_shares, open_db

    db = tmp_path / "w.duckdb"
    con = open_db(db, read_only=False)
    days = ["2025-01-23", "2025-01-24", "2025-01-27"]
    insert_prices(
        con,
        [
            (t, d, c)
            for t, base in (("GOOGL", 200.0), ("GOOG", 202.0))
            for d, c in zip(days, (base, base, base * 0.9), strict=True)
        ],
    )
    insert_shares(
        con,
        [
            (
                "GOOGL",
                cls,
                __import__("datetime").date(2024, 10, 20),
                n,
                __import__("datetime").date(2024, 10, 29),
            )
            for cls, n in (("A", 5_800_000_000), ("B", 860_000_000), ("C", 5_450_000_000))
        ],
    )
    run_models(con)
    con.close()
    outs = {
        name: CliRunner().invoke(
            main, ["losses", "--db", str(db), "--ticker", name, "--format", "json"]
        )
        for name in ("GOOGL", "goog", "Alphabet")
    }
    for name, res in outs.items():
        assert res.exit_code == 0, (name, res.output)
    assert outs["GOOGL"].output == outs["goog"].output == outs["Alphabet"].output
    rows = __import__("json").loads(outs["GOOGL"].output)
    assert [r["company"] for r in rows] == ["Alphabet"]
    expected = -(5_800_000_000 + 860_000_000) * 20.0 - 5_450_000_000 * 20.2
    assert rows[0]["change_usd"] == pytest.approx(expected)
    open_db(db).close()


def _readme_queries() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("**Example queries**") :]
    section = section[: section.index("\n## ")]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_readme_has_example_queries():
    assert len(_readme_queries()) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("query", _readme_queries(), ids=lambda q: q.splitlines()[0][3:40])
def test_readme_example_queries_run_on_the_shared_data(full_history, query):
    """The README's SQL interface examples, run as a user would: each returns rows."""

    con = open_db(full_history)
    rows = con.execute(query).fetchall()
    con.close()
    assert rows, query
    if "2025-01-27" in query and "largest_losses" in query:
        assert rows[0][0] == "NVDA" and round(rows[0][2], 1) == -592.7


def test_sql_literals_carry_any_text_and_json_csv_keep_types():
    import json as _json
    from datetime import date as _date

    import duckdb

    from capwatch.output import lit, to_csv, to_json

    con = duckdb.connect()
    for text in ("O'Neil", "x'); drop table t; --", "Ünïcode ' \\ \" %"):
        assert con.execute(f"select {lit(text)}").fetchone()[0] == text
    assert con.execute(f"select {lit(_date(2025, 1, 27))}").fetchone()[0] == _date(2025, 1, 27)
    rows = [(1, 2.5, None, _date(2025, 1, 27), "a,b", [1, 2])]
    cols = ["i", "f", "n", "d", "s", "l"]
    assert _json.loads(to_json(cols, rows)) == [
        {"i": 1, "f": 2.5, "n": None, "d": "2025-01-27", "s": "a,b", "l": [1, 2]}
    ]
    assert to_csv(cols, rows) == 'i,f,n,d,s,l\n1,2.5,,2025-01-27,"a,b","[1, 2]"'


def test_the_demo_never_writes_into_a_configured_lake(tmp_path, monkeypatch):
    """With a lake configured (a team's shared warehouse), the demo's generated companies still go
    only into its own file, and the run says so."""
    catalog = tmp_path / "catalog.sqlite"
    monkeypatch.setenv("CAPWATCH_WAREHOUSE", "ducklake")
    monkeypatch.setenv("CAPWATCH_LAKE_CATALOG", f"sqlite:{catalog}")
    monkeypatch.delenv("CAPWATCH_LAKE_DATA_PATH", raising=False)
    demo_db = tmp_path / "demo.duckdb"
    res = CliRunner().invoke(main, ["demo", "--db", str(demo_db), "--tickers", "4"])
    assert res.exit_code == 0, res.output
    assert f"writes its own file {demo_db}, not the lake" in res.output
    assert f"tickers into {demo_db}:" in res.output
    assert not catalog.exists() and not Path(f"{catalog}.files").exists()
    with duckdb.connect(str(demo_db), read_only=True) as con:  # the file, in either test lane
        assert con.execute("select count(distinct ticker) from prices_daily").fetchone()[0] == 4
