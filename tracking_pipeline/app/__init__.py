"""The Performance Tracker app (Streamlit, seed 000 §8): `make dashboard` serves `tracking_pipeline/app/main.py`."""
