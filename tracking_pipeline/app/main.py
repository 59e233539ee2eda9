"""Streamlit entry point of the Performance Tracker: `make dashboard` runs
`streamlit run tracking_pipeline/app/main.py` on the configured warehouse (TRACKING_WAREHOUSE, as the pipeline)."""

import traceback

import streamlit as st

st.set_page_config(page_title="Performance Tracker", layout="wide")

try:
    from tracking_pipeline.app.page import show_performance_tracker

    show_performance_tracker()
except Exception as exc:  # noqa: BLE001 - seed §9: the page reports its own failure instead of a stack trace
    st.error(f"The Performance Tracker is temporarily unavailable ({type(exc).__name__}).")
    st.code(traceback.format_exc(), language=None)
