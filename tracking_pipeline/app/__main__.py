"""`python -m tracking_pipeline.app [streamlit options]` (what `make dashboard` runs): warm the process, then serve
the app with `streamlit run` on http://localhost:8501.

Streamlit executes the page in this process, so what is loaded here before the server starts is not paid by the
first visitor: the page's modules, the NYSE calendar, Plotly's figure validators and the first private copy of a
DuckDB warehouse (reused by the server's reader). A failure here is reported and the server starts anyway (the page
then shows the problem)."""

from __future__ import annotations

import sys
from pathlib import Path

MAIN = Path(__file__).with_name("main.py")
DEFAULTS = ["--server.port", "8501", "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]


def warm_up() -> None:
    """Load what a first page view needs: modules, calendar, Plotly validators, the warehouse copy."""
    import plotly.tools

    from tracking_pipeline.app import page  # noqa: F401 - imports the page's modules
    from tracking_pipeline.app.snapshot import make_reader
    from tracking_pipeline.settings import load_settings
    from tracking_pipeline.trading_calendar import nyse_sessions

    nyse_sessions()
    plotly.tools.return_figure_from_figure_or_data(
        {"data": [{"type": "scatter", "x": ["2020-01-02"], "y": [0.0]}, {"type": "bar", "x": [1.0], "y": ["a"]}],
         "layout": {"title": {"text": "warm-up"}}}, validate_figure=True)
    reader = make_reader(load_settings().warehouse)
    try:
        reader.view(wait=5.0)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


def main(argv: list[str]) -> int:
    try:
        warm_up()
    except Exception as exc:  # noqa: BLE001 - the server still starts; the page shows what is wrong
        print(f"warm-up skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(MAIN), *DEFAULTS, *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
